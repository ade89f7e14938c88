"""Edge agent configuration (YAML, validated by pydantic; sources chosen by a ``type`` literal)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationInfo, field_validator, model_validator

from edge_agent.tracking import TrackerConfig
from edge_agent.zones import LineZoneConfig, PolygonZoneConfig
from fieldline.config import ConfigPath, resolve_path
from fieldline.contract import NAME_PATTERN


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TlsConfig(_Strict):
    ca_file: ConfigPath | None = Field(
        default=None, description="CA certificate (PEM) that signed the broker's certificate")
    cert_file: ConfigPath | None = Field(
        default=None, description="Client certificate (PEM), for brokers that require one")
    key_file: ConfigPath | None = Field(default=None, description="Client private key (PEM)")
    insecure: bool = Field(default=False, description="Skip the broker host-name check (testing only)")

    def apply(self, client) -> None:
        """Configure TLS on a paho client."""
        client.tls_set(ca_certs=str(self.ca_file) if self.ca_file else None,
                       certfile=str(self.cert_file) if self.cert_file else None,
                       keyfile=str(self.key_file) if self.key_file else None)
        client.tls_insecure_set(self.insecure)


class MqttConfig(_Strict):
    host: str = Field(default="127.0.0.1", description="Broker host name or IP")
    port: int = Field(default=1883, ge=1, le=65535, description="Broker TCP port")
    protocol: Literal["3.1.1", "5"] = Field(default="3.1.1", description="MQTT protocol version")
    username: str | None = Field(default=None, description="Broker user name (per-device credentials)")
    password: str | None = Field(default=None, description="Broker password")
    keepalive_s: int = Field(default=30, ge=5, le=3600, description="MQTT keepalive in seconds")
    max_inflight: int = Field(default=50, ge=1, le=1000, description="Unacknowledged QoS1 messages in flight")
    tls: TlsConfig | None = Field(default=None, description="TLS settings; unset means plain TCP")
    reconnect_min_s: float = Field(default=1.0, gt=0, le=60, description="First reconnect delay")
    reconnect_max_s: float = Field(default=60.0, gt=0, le=3600, description="Upper bound of the reconnect backoff")


class _ModelCommon(_Strict):
    path: ConfigPath = Field(description="ONNX model file; relative paths (this and every other path in the file) "
                             "are read from the config file's folder")
    conf_threshold: float = Field(default=0.35, ge=0.0, le=1.0, description="Minimum detection score")
    iou_threshold: float = Field(default=0.5, gt=0.0, le=1.0, description="IoU threshold of class-wise NMS")
    threads: int = Field(default=1, ge=1, le=64, description="onnxruntime intra-op threads")
    max_detections: int = Field(default=300, ge=1, le=10_000, description="At most this many detections per frame")
    precision: Literal["file", "auto"] = Field(
        default="file",
        description="file: load `path` as given; auto: also load its FP32/INT8 twin (NAME.onnx / NAME.int8.onnx), "
        "time both at start-up with `threads`, keep the faster on this CPU (INT8 only when >= 5 % faster)",
    )


class FieldlineModelConfig(_ModelCommon):
    type: Literal["fieldline"] = Field(
        default="fieldline",
        description="FieldLine-native model: labels, input size and normalisation are read from the file's metadata "
        "(the default when `type` is omitted)",
    )
    conf_threshold: float | None = Field(
        default=None, ge=0.0, le=1.0,
        description="Minimum detection score; unset: the counting threshold calibrated into the file (`fieldline "
        "model calibrate`: the score at which counts best match labelled frames), else 0.35",
    )
    input_size: int | None = Field(
        default=None, ge=32, le=4096,
        description="Run a dynamic-size model at this square input instead of the size in its metadata (a multiple "
        "of 32): smaller for close-up cameras (big fruit, less compute), larger for far, small objects; unset: "
        "the size in the file (the one its card measured)",
    )
    nms: Literal["agnostic", "classwise"] = Field(
        default="agnostic",
        description="agnostic: overlapping boxes of different classes are one object (a fruit near a ripeness "
        "boundary is counted once, under its most confident class); classwise: NMS within each class only (the "
        "COCO-style setting of `fieldline model eval`)",
    )
    letterbox: Literal["auto", "square", "tight"] = Field(
        default="auto",
        description="tight (dynamic-size models): pad the fitted picture only to the next multiple of 32, so a 4:3 "
        "camera at 512 runs on 512x384, a quarter less compute for the same objects; square: pad to the full input "
        "square; auto: tight when the file is dynamic-size, else square",
    )


class _ForeignModelConfig(_ModelCommon):
    labels: list[str] | ConfigPath = Field(
        description="Class names in class-id order: a list, or a .txt file (one per line) or .yaml file (a list, "
        "an {id: name} mapping, or either under `names`)"
    )
    input_size: int | tuple[int, int] | None = Field(
        default=None, description="Network input: a square side or [height, width]; unset: the model's fixed input size"
    )
    normalization: Literal["rgb_0_1", "rgb_imagenet", "bgr_0_255", "bgr_imagenet"] = Field(
        default="rgb_0_1",
        description="Input tensor: rgb_0_1 (RGB/255, Ultralytics), rgb_imagenet ((RGB/255-mean)/std), bgr_0_255 "
        "(raw BGR, YOLOX), bgr_imagenet (ImageNet mean/std on 0..255 BGR, NanoDet/PicoDet)",
    )
    resize: Literal["letterbox", "letterbox_top_left", "stretch"] = Field(
        default="letterbox",
        description="letterbox: keep aspect, centred, padded; letterbox_top_left: image in the top-left corner "
        "(YOLOX); stretch: plain resize to the input size (NanoDet/PicoDet trained without keep_ratio)",
    )
    pad_value: int = Field(default=114, ge=0, le=255, description="Grey level of the letterbox padding")
    max_candidates: int = Field(
        default=2000, ge=1, le=100_000, description="Keep the top-scoring boxes before NMS (bounds the NMS cost)"
    )

    @field_validator("input_size")
    @classmethod
    def _positive_size(cls, v: int | tuple[int, int] | None) -> int | tuple[int, int] | None:
        sizes = [] if v is None else [v] if isinstance(v, int) else list(v)
        if any(s < 32 or s > 4096 for s in sizes):
            raise ValueError("input_size values must be between 32 and 4096 pixels")
        return v


class Yolov5ModelConfig(_ForeignModelConfig):
    type: Literal["yolov5"] = Field(
        description="YOLOv5/YOLOv7 export: output [1, N, 5 + C] = cx, cy, w, h (input px), objectness, class "
        "scores; score = objectness x class score"
    )


class Yolov8ModelConfig(_ForeignModelConfig):
    type: Literal["yolov8"] = Field(
        description="YOLOv8 / YOLO11 / YOLO26 without the end-to-end head: output [1, 4 + C, N] (or [1, N, 4 + C]) "
        "= cx, cy, w, h (input px) then class scores, no objectness"
    )


class YoloE2EModelConfig(_ForeignModelConfig):
    type: Literal["yolo_e2e"] = Field(
        description="NMS-free end-to-end head (YOLO26 end-to-end, YOLOv10): output [1, K, 6] = x1, y1, x2, y2 "
        "(input px), score, class"
    )


class YoloxModelConfig(_ForeignModelConfig):
    type: Literal["yolox"] = Field(
        description="YOLOX export: output [1, N, 5 + C]; raw head (grid offsets, log sizes) unless `decoded`"
    )
    decoded: bool = Field(
        default=False, description="The export already decoded boxes to input pixels (decode_in_inference)"
    )
    strides: list[int] = Field(default=[8, 16, 32], min_length=1, description="Strides of the head levels, in order")
    normalization: Literal["rgb_0_1", "rgb_imagenet", "bgr_0_255", "bgr_imagenet"] = Field(
        default="bgr_0_255", description="Input tensor normalisation; YOLOX >= 0.2 takes raw 0..255 BGR"
    )
    resize: Literal["letterbox", "letterbox_top_left", "stretch"] = Field(
        default="letterbox_top_left", description="YOLOX pads on the right and bottom (image in the top-left corner)"
    )


class NanodetModelConfig(_ForeignModelConfig):
    type: Literal["nanodet"] = Field(
        description="NanoDet-Plus / PicoDet without post-processing: [1, N, C + 4 x (reg_max + 1)] class scores then "
        "distance distributions (DFL), or separate score and box outputs"
    )
    reg_max: int = Field(default=7, ge=1, le=64, description="Largest distance bin; each side has reg_max + 1 bins")
    strides: list[int] = Field(default=[8, 16, 32, 64], min_length=1, description="Strides of the head levels, in order")
    cell_offset: float = Field(
        default=0.0, ge=0.0, le=1.0, description="Anchor centre inside a cell: 0 for NanoDet-Plus, 0.5 for PicoDet"
    )
    normalization: Literal["rgb_0_1", "rgb_imagenet", "bgr_0_255", "bgr_imagenet"] = Field(
        default="bgr_imagenet", description="Input tensor normalisation; NanoDet/PicoDet use ImageNet mean/std on BGR"
    )


class AnomalyModelConfig(_ModelCommon):
    type: Literal["anomaly"] = Field(
        description="Anomaly model fitted on defect-free images (models/zoo/surface-anomaly.int8.onnx, or the "
        ".onnx FP32 file): regions whose heatmap exceeds the threshold become `anomaly` boxes (use with an "
        "inspection rule)"
    )
    threshold: float | None = Field(
        default=None, gt=0, description="Anomaly score threshold; unset: the one in the file (picked on validation)"
    )
    min_area: int = Field(default=16, ge=1, description="Regions smaller than this many frame pixels are ignored")


def _model_type(value: object) -> str:
    """``model:`` without ``type`` is a FieldLine-native model (configs written before the other families)."""
    if isinstance(value, dict):
        return str(value.get("type", "fieldline"))
    return str(getattr(value, "type", "fieldline"))


ModelConfig = Annotated[
    Annotated[FieldlineModelConfig, Tag("fieldline")]
    | Annotated[Yolov5ModelConfig, Tag("yolov5")]
    | Annotated[Yolov8ModelConfig, Tag("yolov8")]
    | Annotated[YoloE2EModelConfig, Tag("yolo_e2e")]
    | Annotated[YoloxModelConfig, Tag("yolox")]
    | Annotated[NanodetModelConfig, Tag("nanodet")]
    | Annotated[AnomalyModelConfig, Tag("anomaly")],
    Discriminator(
        _model_type,
        custom_error_type="unknown_model_type",
        custom_error_message="type must be one of fieldline, yolov5, yolov8, yolo_e2e, yolox, nanodet, anomaly",
    ),
]
ForeignModelConfig = _ForeignModelConfig


class ZoneConfig(_Strict):
    kind: Literal["shed", "line"] = Field(default="shed", description="Greenhouse shed or factory line")
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", description="Zone id, e.g. shed-07")
    row: str | None = Field(default=None, description="Row inside the shed, e.g. r3")


class SyntheticSource(_Strict):
    type: Literal["synthetic"] = Field(description="Rendered greenhouse camera whose fruits ripen over time")
    seed: int = Field(default=0, description="Seed of the rendered shed")
    width: int = Field(default=640, ge=160, le=3840, description="Frame width in pixels")
    height: int = Field(default=480, ge=120, le=2160, description="Frame height in pixels")
    ripening_per_hour: float = Field(
        default=0.02, ge=0.0, le=1000.0, description="Ripeness gained per simulated hour (1.0 = green to red)"
    )
    time_scale: float = Field(default=1.0, gt=0.0, le=1e6, description="Simulated seconds per real second")


STREAM_PREFIXES = ("rtsp://", "rtsps://", "http://", "https://", "udp://", "tcp://")


class VideoSource(_Strict):
    type: Literal["video"] = Field(description="Video file or RTSP/HTTP stream read with OpenCV/FFmpeg")
    path: str = Field(description="File path or stream URL (a relative file path is read from the config's folder)")
    loop: bool = Field(default=False, description="Start again at the end of a file")
    reconnect_max_s: float = Field(default=30.0, gt=0, description="Streams: longest wait between reconnects")

    @property
    def is_stream(self) -> bool:
        """A network stream (the rest are files); the same prefixes as edge_agent.sources.video."""
        return self.path.startswith(STREAM_PREFIXES)

    @field_validator("path")
    @classmethod
    def _file_relative_to_config(cls, value: str, info: ValidationInfo) -> str:
        return value if "://" in value else str(resolve_path(Path(value), info))


class UsbSource(_Strict):
    type: Literal["usb"] = Field(description="Local camera by index (/dev/video0 is 0)")
    index: int = Field(default=0, ge=0, le=63, description="Camera index")
    width: int | None = Field(default=None, ge=160, description="Requested capture width")
    height: int | None = Field(default=None, ge=120, description="Requested capture height")
    reconnect_max_s: float = Field(default=30.0, gt=0, description="Longest wait between reopen attempts")


class FolderSource(_Strict):
    type: Literal["folder"] = Field(description="Image files in a folder, read in name order")
    path: ConfigPath = Field(description="Folder with .jpg/.png/.bmp images")
    loop: bool = Field(default=False, description="Start again after the last image")
    watch: bool = Field(default=False, description="Keep watching for new files (line-scan exports); never ends")
    poll_s: float = Field(default=0.5, gt=0, description="watch: how often to look for new files")


SourceConfig = Annotated[SyntheticSource | VideoSource | UsbSource | FolderSource, Field(discriminator="type")]


class CountRuleConfig(_Strict):
    type: Literal["count"] = Field(default="count", description="Greenhouse: objects per label per zone")
    mode: Literal["frame", "unique"] = Field(
        default="frame",
        description="frame: per-frame counts smoothed by a median (fixed camera); unique: tracked objects counted "
        "once per sweep (camera on a rail sweeping a row)",
    )
    sweep_s: float = Field(default=600.0, gt=0, description="unique mode: the count restarts every sweep")
    overripe_label: str | None = Field(default=None, description="Label whose share raises an 'overripe' alert")
    overripe_share: float = Field(default=0.3, gt=0, le=1, description="Share of overripe_label that alerts")


class InspectionRuleConfig(_Strict):
    type: Literal["inspection"] = Field(description="Factory line: one pass/reject event per part")
    mode: Literal["frame", "line"] = Field(
        default="frame",
        description="frame: every frame is one part (triggered or line-scan camera, image folder); line: parts "
        "are tracked and inspected when they cross `line`",
    )
    part_label: str | None = Field(default=None, description="line mode: the label of the part itself")
    line: LineZoneConfig | None = Field(default=None, description="line mode: the counting line")
    defect_labels: list[str] | None = Field(
        default=None, description="Labels that are defects; unset: every label except part_label"
    )
    reject_score: float | None = Field(
        default=None, ge=0, le=1,
        description="A defect at or above this score rejects; unset: the pass/reject threshold calibrated into the "
        "model file (`fieldline model calibrate --objective reject`: the lowest score within a false-reject "
        "budget), else 0.5",
    )
    defect_rate_window: int = Field(default=200, ge=10, description="Parts in the sliding defect-rate window")
    defect_rate_alert: float = Field(default=0.05, gt=0, le=1, description="Defect rate that raises an alert")

    @model_validator(mode="after")
    def _line_mode_needs_line(self) -> InspectionRuleConfig:
        if self.mode == "line" and (self.line is None or not self.part_label):
            raise ValueError("mode 'line' needs both `line` and `part_label`")
        return self


RuleConfig = Annotated[CountRuleConfig | InspectionRuleConfig, Field(discriminator="type")]


class CameraAlertsConfig(_Strict):
    offline_after_s: float = Field(default=30.0, gt=0, description="No frame for this long: camera_offline")
    black_level: float = Field(default=8.0, ge=0, le=255, description="Mean brightness below this is a black frame")
    frozen_after_s: float = Field(default=60.0, gt=0, description="Identical frames for this long: camera_frozen")
    cooldown_s: float = Field(default=600.0, ge=0, description="The same alert is not repeated within this time")


class SnapshotPolicy(_Strict):
    periodic_s: float | None = Field(default=900.0, gt=0, description="Evidence image with a count event this often")
    on_reject: bool = Field(default=True, description="Evidence image with every reject")


class SamplingConfig(_Strict):
    """Frames this camera uploads for labelling (issue 40; see ``edge_agent.sampling``)."""

    enabled: bool = Field(default=False, description="Send sample frames (the `sample` command works either way)")
    dataset: str | None = Field(default=None, pattern=NAME_PATTERN,
                                description="Cloud dataset for the samples; unset: the one named after the model")
    uncertain_band: tuple[float, float] = Field(
        default=(0.35, 0.6),
        description="A detection scored inside [low, high] makes the frame uncertain (scores under the model's "
                    "conf_threshold are never seen, so keep low at or above it)")
    flicker_delta: int = Field(
        default=1, ge=0, le=1000,
        description="A label's count that jumps by at least this for one frame and comes back is a flicker; "
                    "0 turns it off")
    label_switch: bool = Field(default=True,
                               description="A tracked object whose label changes (needs a rule that tracks)")
    random_rate: float = Field(default=0.01, ge=0.0, le=1.0, description="Share of other frames sent at random")
    min_interval_s: float = Field(default=5.0, ge=0.0, le=86400.0,
                                  description="At least this long between two samples (on demand excepted)")
    budget_bytes_per_hour: int = Field(default=20_000_000, ge=0,
                                       description="Sample JPEGs may use at most this many bytes per hour")
    dedup_distance: int = Field(
        default=4, ge=-1, le=64,
        description="A frame whose 64-bit difference hash is within this many bits of a recent upload is a "
                    "near-duplicate and not sent; -1 turns the check off")
    dedup_window: int = Field(default=64, ge=1, le=10_000, description="Recent uploads compared for near-duplicates")
    jpeg_quality: int = Field(default=85, ge=30, le=100, description="JPEG quality of sample frames")
    max_width: int = Field(default=1280, ge=64, le=8192, description="Wider frames are scaled down to this")
    rank_window: int = Field(
        default=0, ge=0, le=100_000,
        description="Rank instead of sending as they come: of every this many frames send the most informative one "
                    "(band scores, close class scores, low confidence, count change; near-duplicates skipped), or "
                    "with probability random_rate one drawn at random; 0: off")
    min_score: float = Field(default=1.0, ge=0.0, description="rank_window: a window's best must score at least this")
    margin_below: float = Field(default=0.3, ge=0.0, le=1.0,
                                description="rank_window: a box whose two best class scores differ by less than this "
                                            "is a class confusion (e.g. half_ripe vs ripe)")
    margin_weight: float = Field(default=1.0, ge=0.0, description="rank_window: score per class-confused box")
    flicker_weight: float = Field(default=0.25, ge=0.0,
                                  description="rank_window: score per unit of count change against the previous frame")
    seed: int | None = Field(default=None, description="Seed of the random share (reproducible benches); unset: fresh")

    @field_validator("uncertain_band")
    @classmethod
    def _band_ordered(cls, value: tuple[float, float]) -> tuple[float, float]:
        low, high = value
        if not 0.0 <= low <= 1.0 or not 0.0 <= high <= 1.0:
            raise ValueError(f"scores are 0..1, got [{low}, {high}]")
        if low > high:
            raise ValueError(f"low {low} must not be above high {high}")
        return value


class CameraConfig(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", description="Camera name on this device")
    source: SourceConfig = Field(description="Where frames come from")
    zone: ZoneConfig = Field(description="Shed/row or line this camera sees")
    fps: float = Field(default=2.0, gt=0.0, le=120.0, description="Frame rate cap")
    group_frames: int = Field(
        default=4, ge=1, le=16,
        description="Video files and image folders: frames read ahead and run stage by stage as a group "
                    "(decode all, detect all, then track and apply rules frame by frame; same results, less CPU "
                    "per frame because each stage stays in the CPU caches). Live cameras always run one frame at "
                    "a time")
    publish_interval_s: float = Field(
        default=60.0, gt=0.0, description="Publish a count event at least this often, even without change"
    )
    smoothing_frames: int = Field(
        default=3, ge=1, le=100, description="Counts are the median over this many recent frames"
    )
    rule: RuleConfig = Field(default_factory=CountRuleConfig, description="What turns detections into events")
    zones: list[PolygonZoneConfig] = Field(
        default_factory=list, description="Polygons mapped to sheds/rows; unset: the whole frame is `zone`"
    )
    tracker: TrackerConfig = Field(default_factory=TrackerConfig, description="Tracker for unique and line modes")
    alerts: CameraAlertsConfig = Field(default_factory=CameraAlertsConfig, description="Camera health alerts")
    snapshots: SnapshotPolicy = Field(default_factory=SnapshotPolicy, description="When to send evidence images")
    sampling: SamplingConfig = Field(default_factory=SamplingConfig,
                                     description="Which frames go to the cloud datasets for labelling")


class HomeAssistantConfig(_Strict):
    enabled: bool = Field(default=False, description="Announce each camera's counts as Home Assistant sensors")
    discovery_prefix: str = Field(default="homeassistant", description="Home Assistant's MQTT discovery prefix")


class AgentConfig(_Strict):
    device: str = Field(pattern=NAME_PATTERN, description="Device id, unique per site")
    site: str = Field(pattern=NAME_PATTERN, description="Site id")
    data_dir: ConfigPath = Field(
        default=Path(".fieldline/edge"),
        description="Spool and persisted state; relative: from the config file's folder (the default: from the "
        "working directory)")
    mqtt: MqttConfig = Field(default_factory=MqttConfig, description="Broker connection")
    model: ModelConfig = Field(description="Detector model")
    cameras: list[CameraConfig] = Field(min_length=1, description="Cameras served by this agent")
    snapshot_budget_bytes_per_min: int = Field(
        default=2_000_000, ge=0, description="Evidence images may use at most this many bytes per minute (metered uplinks)"
    )
    metrics_port: int | None = Field(
        default=None, ge=1, le=65535, description="Serve Prometheus /metrics on this port (off when unset)"
    )
    metrics_host: str = Field(default="127.0.0.1", description="Bind address of the /metrics endpoint")
    home_assistant: HomeAssistantConfig = Field(
        default_factory=HomeAssistantConfig, description="Home Assistant MQTT discovery (optional)"
    )
    stats_interval_s: float = Field(default=60.0, gt=0.0, description="Seconds between stats messages")
    spool_max_events: int = Field(
        default=100_000, ge=10, description="Outbox cap; beyond it the oldest events are dropped and counted"
    )

    def missing_files(self) -> list[str]:
        """Files and folders named by this config that are not there, as ``model.path: /full/path does not
        exist`` lines (the config validates without them; the agent cannot run without them)."""
        wanted: list[tuple[str, Path, bool]] = [("model.path", self.model.path, False)]  # key, path, is a folder
        labels = getattr(self.model, "labels", None)
        if isinstance(labels, Path):
            wanted.append(("model.labels", labels, False))
        if self.mqtt.tls is not None:
            for name in ("ca_file", "cert_file", "key_file"):
                path = getattr(self.mqtt.tls, name)
                if path is not None:
                    wanted.append((f"mqtt.tls.{name}", path, False))
        for i, camera in enumerate(self.cameras):
            source = camera.source
            if isinstance(source, FolderSource):
                wanted.append((f"cameras[{i}].source.path", source.path, True))
            elif isinstance(source, VideoSource) and not source.is_stream:
                wanted.append((f"cameras[{i}].source.path", Path(source.path), False))
        problems = []
        for key, path, folder in wanted:
            full = path.absolute()
            if not full.exists():
                problems.append(f"{key}: {full} does not exist")
            elif folder != full.is_dir():
                problems.append(f"{key}: {full} is {'not a folder' if folder else 'a folder, not a file'}")
        return problems

    @model_validator(mode="after")
    def _unique_camera_names(self) -> AgentConfig:
        names = [c.name for c in self.cameras]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"camera names must be unique, repeated: {', '.join(dupes)}")
        return self
