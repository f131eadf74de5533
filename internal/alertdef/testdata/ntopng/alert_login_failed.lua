-- As ntopng's plugins write them: alert_keys from require, the builtin
-- namespace under its ntopng name, i18n() in the description function.
local alert_keys = require "alert_keys"

return {
  alert_key = alert_keys.user.alert_login_failed,
  i18n_title = "alerts_dashboard.login_failed",
  i18n_description = function(ifid, alert, info)
    return i18n("alert_messages.login_failed", {user = info.user, host = ifid})
  end,
  icon = "fas fa-sign-in",
}
