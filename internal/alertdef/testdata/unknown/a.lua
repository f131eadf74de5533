return { alert_key = 40000, i18n_title = "not declared" }
