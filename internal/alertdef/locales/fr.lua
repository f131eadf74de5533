-- tern's built-in French catalog. Entries it lacks fall back to English.
return {
  alerts = {
    ssh_bruteforce = {
      title = "Force brute SSH",
      description = "%{attempts} échecs de connexion SSH depuis %{src} en %{window} s (utilisateurs : %{users})",
    },
    auth_failure_burst = {
      title = "Rafale d'échecs d'authentification",
      description = "%{count} échecs d'authentification depuis %{src} en %{window} s",
    },
    threshold_exceeded = {
      title = "Seuil d'événements dépassé",
    },
  },
}
