#!/system/bin/sh
# tflite-deploy device harness for `eval --device`: run a model once per sample, collect its outputs.
#
#   run_outputs.sh DIR COUNT SIZES OUT BINARY ARGS...
#
# DIR holds one file per model input, input<J>.all: the raw bytes of every sample of that input, one
# after the other (SIZES: the bytes of one sample of each input, comma-separated, in input order).
# For each sample I (0..COUNT-1) the script cuts that sample's bytes into DIR/cur/in<J>.bin, runs
# BINARY ARGS... --output_filepath=out.bin inside DIR/cur (ARGS name the value files relatively:
# --input_layer_value_files=NAME:in0.bin,...), and appends out.bin (benchmark_model's outputs, each
# output tensor's raw bytes in the interpreter's output order) to OUT. So a whole delegate's samples
# cost one adb shell call and one pull. It prints (the host parses it; see
# tflite_deploy/evaluation/device.py):
#   ==== tflite-deploy benchmark ====
#   ... the first sample's benchmark_model output (and a failing sample's) ...
#   ==== tflite-deploy failed-sample=I ====        only for a sample that failed; the loop stops there
#   ==== tflite-deploy exit=N ====                 the failing sample's exit code (0: all ran)
#   ==== tflite-deploy done=K ====                 K samples' outputs are in OUT
#   ==== tflite-deploy end ====
# POSIX sh only (Android's mksh, toybox dd; dash on a Linux host).

[ $# -ge 5 ] || { echo "usage: $0 DIR COUNT SIZES OUT BINARY ARGS..." >&2; exit 2; }
dir=$1; count=$2; sizes=$3; out=$4
shift 4
[ -x "$1" ] || { echo "tflite-deploy: benchmark binary $1 is missing or not executable" >&2; exit 127; }
mkdir -p "$dir/cur" || exit 1
rm -f "$out"
: > "$out" || exit 1
echo "==== tflite-deploy benchmark ===="
i=0
rc=0
while [ "$i" -lt "$count" ]; do
    j=0
    for size in $(echo "$sizes" | tr ',' ' '); do
        dd if="$dir/input$j.all" of="$dir/cur/in$j.bin" bs="$size" skip="$i" count=1 2>/dev/null || {
            echo "tflite-deploy: could not cut sample $i of input $j from $dir/input$j.all"; rc=1; break; }
        j=$((j + 1))
    done
    [ "$rc" -eq 0 ] || { echo "==== tflite-deploy failed-sample=$i ===="; break; }
    rm -f "$dir/cur/out.bin"
    (cd "$dir/cur" && "$@" --output_filepath=out.bin) > "$dir/cur/log.txt" 2>&1
    rc=$?
    if [ "$rc" -eq 0 ] && [ ! -s "$dir/cur/out.bin" ]; then
        echo "tflite-deploy: benchmark_model wrote no output file (--output_filepath needs TFLite 2.11 or later)" \
            >> "$dir/cur/log.txt"
        rc=3
    fi
    if [ "$i" -eq 0 ] || [ "$rc" -ne 0 ]; then
        cat "$dir/cur/log.txt"
    fi
    if [ "$rc" -ne 0 ]; then
        echo "==== tflite-deploy failed-sample=$i ===="
        break
    fi
    cat "$dir/cur/out.bin" >> "$out" || { rc=1; break; }
    i=$((i + 1))
done
rm -rf "$dir/cur"
echo "==== tflite-deploy exit=$rc ===="
echo "==== tflite-deploy done=$i ===="
echo "==== tflite-deploy end ===="
exit "$rc"
