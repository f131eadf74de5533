return {
  alert_key = alert_keys.user.alert_vpn_impossible_travel,
  i18n_title = "alerts.vpn_travel.title",
  i18n_description = "alerts.vpn_travel.description",
  icon = "fas fa-plane",
  sources = "attacker",
}
