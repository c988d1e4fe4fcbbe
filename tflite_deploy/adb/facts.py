"""What a device is, from its system properties: :class:`DeviceInfo` and :func:`parse_getprop`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping, Optional


@dataclass(frozen=True)
class DeviceInfo:
    """One device as the adb server lists it, with facts read from its properties.

    Facts are ``None`` when unknown (a device that is not in the ``device`` state, or whose
    properties could not be read); ``hint`` then says what to do.
    """

    serial: str
    state: str
    model: Optional[str] = None
    manufacturer: Optional[str] = None
    product: Optional[str] = None
    device: Optional[str] = None
    board: Optional[str] = None
    soc: Optional[str] = None
    soc_manufacturer: Optional[str] = None
    abis: tuple[str, ...] = ()
    android_release: Optional[str] = None
    sdk: Optional[int] = None
    is_emulator: bool = False
    transport_id: Optional[int] = None
    hint: Optional[str] = None

    @property
    def usable(self) -> bool:
        return self.state == "device"

    @classmethod
    def from_properties(
        cls,
        serial: str,
        state: str,
        props: Mapping[str, str],
        transport_id: Optional[int] = None,
        hint: Optional[str] = None,
    ) -> "DeviceInfo":
        def get(*names: str) -> Optional[str]:
            for name in names:
                value = props.get(name, "").strip()
                if value:
                    return value
            return None

        abilist = get("ro.product.cpu.abilist")
        if abilist:
            abis = tuple(a for a in abilist.split(",") if a)
        else:
            abis = tuple(a for a in (get("ro.product.cpu.abi"), get("ro.product.cpu.abi2")) if a)
        sdk_text = get("ro.build.version.sdk")
        emulator = (
            serial.startswith("emulator-")
            or get("ro.kernel.qemu") == "1"
            or get("ro.boot.qemu") == "1"
            or get("ro.hardware") in ("goldfish", "ranchu")
        )
        return cls(
            serial=serial,
            state=state,
            model=get("ro.product.model"),
            manufacturer=get("ro.product.manufacturer"),
            product=get("ro.product.name"),
            device=get("ro.product.device"),
            board=get("ro.board.platform", "ro.hardware"),
            soc=get("ro.soc.model"),
            soc_manufacturer=get("ro.soc.manufacturer"),
            abis=abis,
            android_release=get("ro.build.version.release"),
            sdk=int(sdk_text) if sdk_text and sdk_text.isdigit() else None,
            is_emulator=emulator,
            transport_id=transport_id,
            hint=hint,
        )


_PROP_LINE = re.compile(r"^\[(?P<key>[^\]]*)\]: \[(?P<value>.*)\]\s*$")


def parse_getprop(text: str) -> dict[str, str]:
    """Parse ``getprop`` output (``[name]: [value]`` lines; a value may span lines)."""
    props: dict[str, str] = {}
    key: Optional[str] = None
    for line in text.splitlines():
        m = _PROP_LINE.match(line)
        if m:
            key = m.group("key")
            props[key] = m.group("value")
        elif line.startswith("[") and "]: [" in line:
            key, _, value = line[1:].partition("]: [")
            props[key] = value
        elif key is not None and not line.startswith("["):
            # continuation of a multi-line value: keep it, drop the closing bracket
            props[key] = (props[key] + "\n" + line).removesuffix("]")
    return props
