"""Every user-visible string of the app, in English and Simplified Chinese, and the CJK font lookup.

``Translator("zh").t("overview_title")`` returns the string; ``{name}`` placeholders are filled from
keyword arguments. A key missing from the table raises ``KeyError`` (tests check both languages are
complete), so a typo never shows up as an empty label on a phone.
"""

from __future__ import annotations

import os
from pathlib import Path

LANGUAGES: dict[str, str] = {"en": "English", "zh": "简体中文"}

# key: (English, Simplified Chinese)
TABLE: dict[str, tuple[str, str]] = {
    "app_title": ("FieldLine", "FieldLine 田线"),
    # navigation
    "nav_overview": ("Sheds", "大棚"),
    "nav_alerts": ("Alerts", "告警"),
    "nav_plan": ("Plan", "采收计划"),
    "nav_settings": ("Settings", "设置"),
    "back": ("< Back", "< 返回"),
    "refresh": ("Refresh", "刷新"),
    "pull_to_refresh": ("Pull down to refresh", "下拉刷新"),
    "refreshing": ("Refreshing...", "正在刷新..."),
    # overview
    "overview_title": ("Site overview", "园区总览"),
    "filter_all": ("All sheds", "全部大棚"),
    "filter_mine": ("My sheds today", "我今天的大棚"),
    "shed_count": ("{n} sheds", "{n} 个大棚"),
    "pick_ready": ("ready", "可采"),
    "pick_ready_long": ("Pick-ready fruits", "可采果实"),
    "open_alerts_short": ("alerts: {n}", "{n} 条告警"),
    "no_alerts_short": ("no alerts", "无告警"),
    "camera_online": ("camera ok", "摄像头正常"),
    "camera_offline": ("camera OFF", "摄像头离线"),
    "camera_unknown": ("camera ?", "摄像头未知"),
    "urgency_alarm": ("Act now", "立即处理"),
    "urgency_pick": ("Pick soon", "尽快采收"),
    "urgency_ok": ("OK", "正常"),
    "urgency_unknown": ("No data", "无数据"),
    "legend": ("Red: act now  Amber: pick soon  Green: OK", "红:立即处理  黄:尽快采收  绿:正常"),
    # freshness / offline
    "live": ("Live", "实时"),
    "updated_ago": ("Updated {age} ago", "{age}前更新"),
    "offline_banner": ("OFFLINE · data from {age} ago", "离线 · 数据来自 {age}前"),
    "offline_no_cache": ("OFFLINE · no saved data yet", "离线 · 尚无缓存数据"),
    "queued_actions": ("{n} queued", "{n} 项待发送"),
    "age_seconds": ("{n} s", "{n} 秒"),
    "age_minutes": ("{n} min", "{n} 分钟"),
    "age_hours": ("{n} h", "{n} 小时"),
    "age_days": ("{n} d", "{n} 天"),
    "never": ("never", "从未"),
    "not_logged_in": ("Not signed in - open Settings", "未登录 - 请打开设置"),
    "error_prefix": ("Error: {message}", "错误:{message}"),
    # shed detail
    "detail_title": ("Shed {name}", "大棚 {name}"),
    "wrong_count": ("Count looks wrong?", "计数不对?"),
    "wrong_count_confirm": ("Send a fresh picture of this shed for labelling? Someone checks the boxes and the "
                            "next model learns from it.", "发送这个大棚的新图片去标注? 有人核对后, 下一个模型会从中学习"),
    "wrong_count_send": ("Send picture", "发送图片"),
    "wrong_count_cancel": ("Cancel", "取消"),
    "wrong_count_sent": ("Thanks: the camera sends a picture for labelling.", "谢谢: 摄像头会发送一张图片去标注"),
    "wrong_count_queued": ("Saved - sent when online.", "已保存 - 联网后发送"),
    "wrong_count_refused": ("Not sent: {reason}", "未发送: {reason}"),
    "by_ripeness": ("Counts by ripeness", "按成熟度计数"),
    "by_row": ("Counts by row", "按行计数"),
    "row_label": ("Row {row}", "第 {row} 行"),
    "trend_7d": ("Pick-ready, last 7 days", "近 7 天可采数量"),
    "chart_caption": ("7 days ago -> now, top line = {peak}", "7 天前 -> 现在,顶线 = {peak}"),
    "no_trend": ("No history yet", "暂无历史数据"),
    "forecast_3d": ("Pick-ready, next 3 mornings", "未来 3 天早上可采数量"),
    "no_forecast": ("no forecast yet", "暂无预测"),
    "forecast_day": ("{day}: {ready} ({low}-{high})", "{day}:{ready}({low}-{high})"),
    "forecast_source_forecast": ("with the temperature forecast", "按气温预报"),
    "forecast_source_recent": ("assuming yesterday's temperatures", "按昨日气温推算"),
    "forecast_source_none": ("no temperature sensor", "无温度传感器"),
    "reason_warm": ("warm week: {pct} % vs last week's pace", "本周偏暖:进度比上周 {pct} %"),
    "reason_cool": ("cool week: {pct} % vs last week's pace", "本周偏凉:进度比上周 {pct} %"),
    "reason_steady": ("steady week: {pct} % vs last week's pace", "本周平稳:进度比上周 {pct} %"),
    "reason_first": ("first week of climate data", "第一周温度数据"),
    "reason_tail": ("{n} nearly ripe fruits, {share} % of them ready by tomorrow ({gain}) at {dd} °C·d",
                    "{n} 个接近成熟的果实,约 {share} % 明早可采({gain}),积温 {dd} °C·d"),
    "climate_7d": ("Temperature, last 7 days", "近 7 天温度"),
    "no_climate": ("no sensor", "无传感器"),
    "climate_caption": ("{low}-{high} °C over 7 days (band: hourly min-max) · now {now} °C{rh}",
                        "7 天 {low}-{high} °C(色带:每小时最低-最高)· 当前 {now} °C{rh}"),
    "climate_humidity": (" · {rh} % RH", " · 湿度 {rh} %"),
    "climate_silent": (" · {n} sensor(s) silent", " · {n} 个传感器无数据"),
    "tomorrow_short": ("tomorrow {n}", "明天 {n}"),
    "latest_snapshot": ("Latest snapshot", "最新抓拍"),
    "no_snapshot": ("No snapshot", "暂无抓拍"),
    "cameras": ("Cameras", "摄像头"),
    "last_seen": ("last seen {age} ago", "{age}前在线"),
    "total": ("total", "合计"),
    # ripeness labels
    "label_green": ("green", "青果"),
    "label_breaker": ("breaker", "破色期"),
    "label_turning": ("turning", "转色期"),
    "label_pink": ("pink", "粉红期"),
    "label_light_red": ("light red", "浅红期"),
    "label_red": ("red", "红熟"),
    "label_half_ripe": ("half ripe", "半熟"),
    "label_ripe": ("ripe", "成熟"),
    "label_overripe": ("overripe", "过熟"),
    # alerts
    "alerts_title": ("Alerts", "告警"),
    "severity_critical": ("CRITICAL", "严重"),
    "severity_warning": ("WARNING", "警告"),
    "severity_info": ("INFO", "提示"),
    "state_active": ("active", "未处理"),
    "state_acknowledged": ("acknowledged", "已确认"),
    "state_cleared": ("cleared", "已清除"),
    "ack": ("Acknowledge", "确认"),
    "ack_pending": ("Acknowledged - sending when online", "已确认 - 联网后发送"),
    "acked_by": ("Acknowledged by {who}, {age} ago", "{who} 已确认({age}前)"),
    "alert_count": ("x{n}", "x{n}"),
    "no_alerts": ("No open alerts", "没有未处理的告警"),
    "show_all_alerts": ("Show cleared too", "显示已清除"),
    "show_open_alerts": ("Open only", "仅未处理"),
    # harvest plan
    "plan_title": ("Harvest plan {date}", "{date} 采收计划"),
    "plan_none": ("No plan yet - tap Re-plan", "尚无计划 - 请点击重新规划"),
    "operator_summary": ("{fruits} fruits, {minutes} min", "{fruits} 个果实,{minutes} 分钟"),
    "operator_detail": ("pick {pick} min + walk {walk} min", "采摘 {pick} 分钟 + 步行 {walk} 分钟"),
    "makespan": ("Done by everyone in {minutes} min", "全部完成需 {minutes} 分钟"),
    "mark_done": ("Done", "完成"),
    "undo_done": ("Undo", "撤销"),
    "done_label": ("done", "已完成"),
    "replan": ("Re-plan", "重新规划"),
    "plan_progress": ("{done} of {total} sheds done", "已完成 {done}/{total} 个大棚"),
    "you": ("(you)", "(你)"),
    "hours_title": ("Hours needed per day", "每天所需工时"),
    "hours_day": ("{day}: {fruits} fruits · {hours} h of work · {span} h for {n} operators",
                  "{day}:{fruits} 个果实 · 共 {hours} 小时 · {n} 人需 {span} 小时"),
    "hours_today": ("Today", "今天"),
    "hours_band": ("expected {low}-{high} fruits", "预计 {low}-{high} 个果实"),
    # settings
    "settings_title": ("Settings", "设置"),
    "server_url": ("Server URL", "服务器地址"),
    "username": ("User name", "用户名"),
    "password": ("Password", "密码"),
    "login": ("Sign in", "登录"),
    "logout": ("Sign out", "退出登录"),
    "logged_in_as": ("Signed in as {user} ({role})", "已登录:{user}({role})"),
    "login_failed": ("Sign-in failed: {message}", "登录失败:{message}"),
    "language": ("Language", "语言"),
    "operator_me": ("I am operator", "我是操作员"),
    "save": ("Save", "保存"),
    "saved": ("Saved", "已保存"),
    "font_missing": (
        "No Chinese font found. Install fonts-wqy-microhei (or Noto Sans CJK) to show Chinese text.",
        "未找到中文字体。请安装 fonts-wqy-microhei 或 Noto Sans CJK。",
    ),
}

CJK_FONT_CANDIDATES: tuple[str, ...] = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/system/fonts/NotoSansCJK-Regular.ttc",  # Android
    "/system/fonts/NotoSansSC-Regular.otf",  # Android
    "/system/fonts/DroidSansFallback.ttf",  # older Android
)

FONT_ENV = "FIELDLINE_CJK_FONT"


class FontMissing(RuntimeError):
    """No CJK font could be found; the message says what to install."""


def find_cjk_font(candidates: tuple[str, ...] = CJK_FONT_CANDIDATES) -> str | None:
    """Path of a font that can draw Chinese, or None. ``$FIELDLINE_CJK_FONT`` is tried first."""
    override = os.environ.get(FONT_ENV)
    paths = ((override,) if override else ()) + candidates
    for path in paths:
        if path and Path(path).is_file():
            return path
    for folder in ("/usr/share/fonts", "/system/fonts"):
        root = Path(folder)
        if not root.is_dir():
            continue
        for pattern in ("**/*wqy*.tt[cf]", "**/NotoSans*CJK*.tt[cf]", "**/NotoSansSC*.[ot]tf"):
            for found in root.glob(pattern):
                return str(found)
    return None


def font_missing_message() -> str:
    return TABLE["font_missing"][0] + " / " + TABLE["font_missing"][1]


class Translator:
    """Looks strings up in :data:`TABLE` for one language at a time."""

    def __init__(self, lang: str = "en") -> None:
        self.lang = "en"
        self.set_language(lang)

    def set_language(self, lang: str) -> None:
        if lang not in LANGUAGES:
            raise ValueError(f"language: {lang!r} is not one of {sorted(LANGUAGES)}")
        self.lang = lang

    def t(self, key: str, **values: object) -> str:
        en, zh = TABLE[key]
        text = zh if self.lang == "zh" else en
        return text.format(**values) if values else text

    def label(self, label: str) -> str:
        """A model label (ripe, green ...) in the current language; unknown labels pass through."""
        key = f"label_{label}"
        return self.t(key) if key in TABLE else label.replace("_", " ")

    def age(self, seconds: float | None) -> str:
        """'5 min' / '5 分钟' style age of a piece of data."""
        if seconds is None:
            return self.t("never")
        s = max(0, int(seconds))
        if s < 90:
            return self.t("age_seconds", n=s)
        if s < 90 * 60:
            return self.t("age_minutes", n=round(s / 60))
        if s < 36 * 3600:
            return self.t("age_hours", n=round(s / 3600))
        return self.t("age_days", n=round(s / 86400))
