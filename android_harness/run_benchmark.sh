#!/system/bin/sh
# tflite-deploy device harness: pushed to /data/local/tmp/tflite-deploy/ and run over adb.
#
#   run_benchmark.sh state                          print the device state as key=value lines
#   run_benchmark.sh run [--pin-big] [--libdir DIR] BINARY ARGS...
#                                                   state, benchmark, state again, in one block;
#                                                   --libdir: vendor libraries (NPU) the binary loads
#
# The block `run` prints (the host parses it; see tflite_deploy/benchmark/device.py):
#   ==== tflite-deploy state-before ====
#   key=value ...
#   ==== tflite-deploy benchmark ====
#   ... benchmark_model's own output, stdout and stderr together ...
#   ==== tflite-deploy exit=N ====
#   ==== tflite-deploy state-after ====
#   key=value ...
#   ==== tflite-deploy end ====
# POSIX sh only (Android's mksh, toybox; dash on a Linux host): no arrays, no bash-isms.
# TFLITE_DEPLOY_SYSFS replaces /sys (tests point it at a fake cpufreq/thermal tree).

SYSFS=${TFLITE_DEPLOY_SYSFS:-/sys}

read_file() { [ -r "$1" ] && cat "$1" 2>/dev/null | head -n 1; }

state() {
    for dir in "$SYSFS"/devices/system/cpu/cpu[0-9]*; do
        [ -d "$dir/cpufreq" ] || continue
        cpu=${dir##*/}
        gov=$(read_file "$dir/cpufreq/scaling_governor")
        [ -n "$gov" ] && echo "cpu.$cpu.governor=$gov"
        max=$(read_file "$dir/cpufreq/cpuinfo_max_freq")
        [ -n "$max" ] && echo "cpu.$cpu.max_khz=$max"
        cur=$(read_file "$dir/cpufreq/scaling_cur_freq")
        [ -n "$cur" ] && echo "cpu.$cpu.cur_khz=$cur"
    done
    for zone in "$SYSFS"/class/thermal/thermal_zone[0-9]*; do
        [ -d "$zone" ] || continue
        t=$(read_file "$zone/temp")
        [ -n "$t" ] && echo "thermal.$(read_file "$zone/type" | tr ' =' '__').millicelsius=$t"
    done
    bat=$SYSFS/class/power_supply/battery
    if [ -d "$bat" ]; then
        v=$(read_file "$bat/capacity"); [ -n "$v" ] && echo "battery.level=$v"
        v=$(read_file "$bat/status"); [ -n "$v" ] && echo "battery.status=$v"
        v=$(read_file "$bat/temp"); [ -n "$v" ] && echo "battery.decicelsius=$v"
    fi
    echo "uptime=$(read_file /proc/uptime | cut -d ' ' -f 1)"
}

# Hex CPU mask of the cores with the highest cpuinfo_max_freq (the "big" cluster).
big_core_mask() {
    best=0
    for f in "$SYSFS"/devices/system/cpu/cpu[0-9]*/cpufreq/cpuinfo_max_freq; do
        [ -r "$f" ] || continue
        v=$(cat "$f"); [ "$v" -gt "$best" ] && best=$v
    done
    mask=0
    for f in "$SYSFS"/devices/system/cpu/cpu[0-9]*/cpufreq/cpuinfo_max_freq; do
        [ -r "$f" ] || continue
        cpu=${f#"$SYSFS"/devices/system/cpu/cpu}; cpu=${cpu%%/*}
        [ "$(cat "$f")" -eq "$best" ] && mask=$((mask | (1 << cpu)))
    done
    printf '%x' "$mask"
}

case "$1" in
    state)
        state
        ;;
    run)
        shift
        pin=""
        pin_note=""
        if [ "$1" = "--pin-big" ]; then
            shift
            mask=$(big_core_mask)
            if ! command -v taskset >/dev/null 2>&1; then
                pin_note="unpinned: no taskset on this device"
            elif [ "$mask" = "0" ]; then
                pin_note="unpinned: no cpufreq information to find the big cores"
            elif ! probe=$(taskset "$mask" true 2>&1); then
                # a taskset that cannot set the mask (SELinux, offline cores): measure unpinned
                pin_note="unpinned: taskset $mask failed: $(echo "$probe" | head -n 1)"
            else
                pin=$mask
            fi
        fi
        if [ "$1" = "--libdir" ]; then
            # the NPU dispatch library loads the vendor's runtime (QNN: through ADSP_LIBRARY_PATH too)
            LD_LIBRARY_PATH="$2${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
            ADSP_LIBRARY_PATH="$2${ADSP_LIBRARY_PATH:+;$ADSP_LIBRARY_PATH}"
            export LD_LIBRARY_PATH ADSP_LIBRARY_PATH
            shift 2
        fi
        [ -x "$1" ] || { echo "tflite-deploy: benchmark binary $1 is missing or not executable" >&2; exit 127; }
        echo "==== tflite-deploy state-before ===="
        state
        [ -n "$pin" ] && echo "pinned.mask=$pin"
        [ -n "$pin_note" ] && echo "pinned.note=$pin_note"
        echo "==== tflite-deploy benchmark ===="
        if [ -n "$pin" ]; then
            taskset "$pin" "$@" 2>&1
        else
            "$@" 2>&1
        fi
        rc=$?
        echo "==== tflite-deploy exit=$rc ===="
        echo "==== tflite-deploy state-after ===="
        state
        echo "==== tflite-deploy end ===="
        exit "$rc"
        ;;
    *)
        echo "usage: $0 state | run [--pin-big] [--libdir DIR] BINARY ARGS..." >&2
        exit 2
        ;;
esac
