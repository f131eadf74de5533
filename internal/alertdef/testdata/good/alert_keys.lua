return { user = { alert_vpn_impossible_travel = 32768, alert_dns_tunnel = 32769 } }
