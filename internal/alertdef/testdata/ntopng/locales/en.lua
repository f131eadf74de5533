return {
  alerts_dashboard = { login_failed = "Login failed" },
  alert_messages = { login_failed = "%{user} failed to log in on %{host}" },
}
