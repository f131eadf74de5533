return { user = { alert_typo = 32768 } }
