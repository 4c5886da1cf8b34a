"""Vocabulary of the monitoring network: national device-type codes and their payload channels.

Type codes and payload field names follow the national low-cost ("普适型") device platform
conventions: LF crack, GP surface GNSS, SW deep displacement, JS acceleration, QJ tilt,
ZD vibration, YL stress, and the rain gauge (``value`` interval rainfall, ``totalValue`` cumulative).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class SensorType(StrEnum):
    LF = "LF"  # 裂缝计 crack meter
    GP = "GP"  # GNSS 地表位移
    SW = "SW"  # 深部位移
    JS = "JS"  # 加速度
    QJ = "QJ"  # 倾角
    ZD = "ZD"  # 振动
    YL = "YL"  # 应力
    RAIN = "RAIN"  # 雨量计
    SOIL_MOISTURE = "SOIL_MOISTURE"  # 土壤含水率
    PORE_PRESSURE = "PORE_PRESSURE"  # 孔隙水压力
    GROUNDWATER = "GROUNDWATER"  # 地下水位
    SURFACE_WATER = "SURFACE_WATER"  # 地表水位
    VIDEO = "VIDEO"  # 视频 (metadata only, no readings)


SENSOR_TYPE_ZH = {
    SensorType.LF: "裂缝计",
    SensorType.GP: "GNSS地表位移",
    SensorType.SW: "深部位移",
    SensorType.JS: "加速度计",
    SensorType.QJ: "倾角计",
    SensorType.ZD: "振动传感器",
    SensorType.YL: "应力计",
    SensorType.RAIN: "雨量计",
    SensorType.SOIL_MOISTURE: "土壤含水率",
    SensorType.PORE_PRESSURE: "孔隙水压力计",
    SensorType.GROUNDWATER: "地下水位计",
    SensorType.SURFACE_WATER: "地表水位计",
    SensorType.VIDEO: "视频监控",
}


@dataclass(frozen=True, slots=True)
class Channel:
    name: str  # the payload field
    quantity: str
    unit: str


#: The channels each device type reports, by payload field name.
CHANNELS: dict[SensorType, tuple[Channel, ...]] = {
    SensorType.LF: (Channel("value", "crack_width", "mm"),),
    SensorType.GP: (
        Channel("gpsTotalX", "displacement_x", "mm"),
        Channel("gpsTotalY", "displacement_y", "mm"),
        Channel("gpsTotalZ", "displacement_z", "mm"),
    ),
    SensorType.SW: (Channel("dispsX", "deep_displacement_x", "mm"), Channel("dispsY", "deep_displacement_y", "mm")),
    SensorType.JS: (
        Channel("gX", "acceleration_x", "mg"),
        Channel("gY", "acceleration_y", "mg"),
        Channel("gZ", "acceleration_z", "mg"),
    ),
    SensorType.QJ: (
        Channel("X", "tilt_x", "deg"),
        Channel("Y", "tilt_y", "deg"),
        Channel("Z", "tilt_z", "deg"),
        Channel("angle", "tilt_angle", "deg"),
        Channel("AZI", "tilt_azimuth", "deg"),
    ),
    SensorType.ZD: (Channel("value", "vibration", "mm/s"),),
    SensorType.YL: (Channel("value", "stress", "kN"),),
    SensorType.RAIN: (Channel("value", "rainfall_interval", "mm"), Channel("totalValue", "rainfall_total", "mm")),
    SensorType.SOIL_MOISTURE: (Channel("value", "soil_moisture", "%"),),
    SensorType.PORE_PRESSURE: (Channel("value", "pore_pressure", "kPa"),),
    SensorType.GROUNDWATER: (Channel("value", "groundwater_level", "m"),),
    SensorType.SURFACE_WATER: (Channel("value", "surface_water_level", "m"),),
    SensorType.VIDEO: (),
}

#: Payload fields that describe the device itself rather than a reading.
HEALTH_FIELDS = {
    "battery": "battery",
    "bat": "battery",
    "voltage": "battery",
    "signal": "signal",
    "rssi": "signal",
    "csq": "signal",
}
#: Payload fields that may carry the reading time.
TIME_FIELDS = ("time", "ts", "timestamp", "collectTime", "t")
