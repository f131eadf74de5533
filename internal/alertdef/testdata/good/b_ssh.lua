return {
  alert_key = alert_keys.builtin.alert_ssh_bruteforce,
  i18n_title = "alerts.ssh_bruteforce.title",
  i18n_description = function(ifid, alert, info) return "x" end,
}
