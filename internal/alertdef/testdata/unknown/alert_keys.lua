return { user = { alert_known = 32800 } }
