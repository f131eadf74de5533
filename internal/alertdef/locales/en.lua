-- tern's built-in English catalog for the builtin alert keys. A definitions
-- directory may override any entry in its own locales/en.lua.
return {
  alerts = {
    ssh_bruteforce = {
      title = "SSH brute force",
      description = "%{attempts} failed SSH logins from %{src} within %{window}s (users: %{users})",
    },
    auth_failure_burst = {
      title = "Burst of authentication failures",
      description = "%{count} authentication failures from %{src} within %{window}s",
    },
    threshold_exceeded = {
      title = "Event threshold exceeded",
      description = "%{count} events for %{key} within %{window}",
    },
    flow_flood_attacker = {
      title = "Flow flood (attacker)",
      description = "%{key} originated %{count} events within %{window}",
    },
    flow_flood_victim = {
      title = "Flow flood (victim)",
      description = "%{key} received %{count} events within %{window}",
    },
    repeated = {
      title = "Repeated alert",
      description = "%{count} repeats suppressed",
    },
  },
}
