package cefx

import "testing"

func TestSeverity(t *testing.T) {
	for in, want := range map[string]int32{
		"0": 5, "3": 5, "4": 4, "6": 4, "7": 2, "8": 2, "9": 1, "10": 1, "11": 7,
		"Low": 5, "medium": 4, "HIGH": 2, "Very-High": 1, "Unknown": 7, "": 7, "x": 7, " 8 ": 2, "010": 7,
	} {
		if got := ToSyslog(in); got != want {
			t.Errorf("ToSyslog(%q) = %d, want %d", in, got, want)
		}
	}
	for sev := int32(0); sev < 8; sev++ {
		if !ValidSeverity(FromSyslog(sev)) {
			t.Errorf("FromSyslog(%d) = %q is not valid", sev, FromSyslog(sev))
		}
	}
	// formats.md §7: crit ↔ 8, warning ↔ 5, notice ↔ 2, both ways.
	for sev, cef := range map[int32]string{2: "8", 4: "5", 5: "2"} {
		if FromSyslog(sev) != cef || ToSyslog(cef) != sev {
			t.Errorf("severity %d does not map to and from %s", sev, cef)
		}
	}
	for _, s := range []string{"0", "5", "10", "Unknown", "Low", "Medium", "High", "Very-High"} {
		if !ValidSeverity(s) {
			t.Errorf("ValidSeverity(%q) = false", s)
		}
	}
	for _, s := range []string{"", "11", "05", "-1", "high", "1.0", " 5"} {
		if ValidSeverity(s) {
			t.Errorf("ValidSeverity(%q) = true", s)
		}
	}
}

func TestValidKey(t *testing.T) {
	for _, k := range []string{"src", "cs1Label", "_cefVer", "ad.Error_,Code", "ad.field[0]", "0"} {
		if !ValidKey(k) {
			t.Errorf("ValidKey(%q) = false", k)
		}
	}
	for _, k := range []string{"", ".a", "x-forwarded-for", "a b", "a=b", "é", "[0]"} {
		if ValidKey(k) {
			t.Errorf("ValidKey(%q) = true", k)
		}
	}
}
