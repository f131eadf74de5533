return { alerts = { vpn_travel = { title = "Voyage impossible" } } }
