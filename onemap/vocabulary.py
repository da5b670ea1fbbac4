"""The values a stored status may hold, declared once: the loads check rows against them,
the read side builds its filters from them, the dashboard labels each
(``dashboard.messages``; a test keeps the labels complete)."""

# case_event.status: a case is closed when its status says so.
CASE_STATUSES = ("open", "closed")
# iot_device.status and iot_event.status (a status event's new status).
DEVICE_STATUSES = ("online", "offline", "alarm")
# grid_worker.role: 专职网格员, 兼职网格员, 站长 (the head of a community's 工作站).
WORKER_ROLES = ("full_time", "part_time", "station_head")
