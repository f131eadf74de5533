return { alert_key = alert_keys.builtin.alert_ssh_bruteforce, i18n_title = "one" }
