"""The values a stored status may hold, declared once: the loads check rows against them,
the read side builds its filters from them, the dashboard labels each
(``dashboard.messages``; a test keeps the labels complete)."""

# case_event.status: a case is closed when its status says so.
CASE_STATUSES = ("open", "closed")
# iot_device.status and iot_event.status (a status event's new status).
DEVICE_STATUSES = ("online", "offline", "alarm")
