-- A burst of application authentication failures (CEF AuthFail) from one source.
return {
  alert_key = alert_keys.builtin.alert_auth_failure_burst,
  i18n_title = "alerts.auth_failure_burst.title",
  i18n_description = function(ifid, alert, info)
    return string.format("%d authentication failures from %s within %ds (seen by %s)",
      info.count, info.src, info.window, ifid)
  end,
  icon = "fas fa-sign-in-alt",
  severity = "medium",
  sources = "attacker",
}
