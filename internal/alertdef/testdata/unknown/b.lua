return { alert_key = alert_keys.user.alert_typo, i18n_title = "nil key", colour = "red" }
