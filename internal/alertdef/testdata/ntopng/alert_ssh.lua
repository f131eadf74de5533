local alert_keys = require "alert_keys"

return {
  alert_key = alert_keys.ntopng.alert_ssh_bruteforce,
  i18n_title = "alerts.ssh_bruteforce.title",
}
