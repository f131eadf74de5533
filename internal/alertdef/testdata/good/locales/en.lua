return { alerts = { vpn_travel = { title = "Impossible travel", description = "%{user} from %{a} then %{b} in %{minutes} min" } } }
