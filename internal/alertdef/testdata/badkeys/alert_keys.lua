return { user = { alert_low = 100, alert_a = 40000, alert_b = 40000, alert_ssh_bruteforce = 40001 } }
