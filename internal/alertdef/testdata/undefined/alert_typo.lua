-- i18m is a typo of i18n: a nil call that only shows when an alert is raised,
-- unless loading calls the description.
return {
  alert_key = alert_keys.user.alert_typo,
  i18n_title = "Typo",
  i18n_description = function(ifid, alert, info)
    local who = info.user .. "@" .. ifid
    return i18m("alert_messages.typo", {who = who})
  end,
}
