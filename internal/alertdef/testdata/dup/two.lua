return { alert_key = 1, i18n_title = "two" }
