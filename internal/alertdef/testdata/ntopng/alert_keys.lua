return { user = { alert_login_failed = 32768 } }
