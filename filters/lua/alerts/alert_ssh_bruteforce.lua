-- SSH brute force: one source failing SSH password logins again and again.
return {
  alert_key = alert_keys.builtin.alert_ssh_bruteforce,
  i18n_title = "alerts.ssh_bruteforce.title",
  i18n_description = "alerts.ssh_bruteforce.description",
  icon = "fas fa-user-secret",
  severity = "high",
  sources = "attacker",
  targets = "victim",
}
