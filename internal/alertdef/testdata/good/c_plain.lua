return { alert_key = alert_keys.user.alert_dns_tunnel, i18n_title = "DNS tunnel (plain text title)" }
