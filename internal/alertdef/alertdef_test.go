package alertdef

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestLoad(t *testing.T) {
	for _, tc := range []struct {
		locale          string
		travel, ssh, tr string
	}{
		{"en", "Impossible travel", "SSH brute force", "bob from Paris then Sydney in 40 min"},
		// fr: the directory's fr title, the built-in fr title, the English description.
		{"fr", "Voyage impossible", "Force brute SSH", "bob from Paris then Sydney in 40 min"},
		// de: no catalog at all; English everywhere.
		{"de", "Impossible travel", "SSH brute force", "bob from Paris then Sydney in 40 min"},
	} {
		set, err := Load("testdata/good", tc.locale)
		if err != nil {
			t.Fatal(err)
		}
		if len(set.Defs) != 3 || set.Defs[0].Key != 1 || set.Defs[1].Key != 32768 || set.Defs[2].Key != 32769 {
			t.Fatalf("defs sorted by key: %+v", set.Defs)
		}
		travel := set.ByName("alert_vpn_impossible_travel")
		if travel.Title != tc.travel || travel.Namespace != User || travel.Sources != "attacker" || travel.Icon != "fas fa-plane" {
			t.Errorf("%s: %+v", tc.locale, travel)
		}
		if ssh := set.ByKey(1); ssh.Title != tc.ssh || !ssh.DescFunc || ssh.Namespace != Builtin || ssh.Name != "alert_ssh_bruteforce" {
			t.Errorf("%s: %+v", tc.locale, ssh)
		}
		params := map[string]string{"user": "bob", "a": "Paris", "b": "Sydney", "minutes": "40"}
		got := Render(set.Localize(travel.DescKey), func(k string) (string, bool) { v, ok := params[k]; return v, ok })
		if got != tc.tr {
			t.Errorf("%s: description %q", tc.locale, got)
		}
		if plain := set.ByKey(32769); plain.Title != "DNS tunnel (plain text title)" {
			t.Errorf("text that is no catalog key is used verbatim: %q", plain.Title)
		}
	}
	if got := Render("%{a} and %{missing} and %{", func(k string) (string, bool) { return "A", k == "a" }); got != "A and %{missing} and %{" {
		t.Fatalf("Render: %q", got)
	}
}

func TestLoadErrors(t *testing.T) {
	for dir, wants := range map[string][]string{
		"dup": {filepath.Join("testdata", "dup", "two.lua") + ": alert_key 1 (alert_ssh_bruteforce) is already defined by " + filepath.Join("testdata", "dup", "one.lua")},
		"unknown": {
			filepath.Join("testdata", "unknown", "a.lua") + ": alert_key 40000 is not declared: neither a builtin key nor a user key of " + filepath.Join("testdata", "unknown", "alert_keys.lua"),
			"alert_key is missing or names no declared key",
			"(declared keys: tern's builtin ones and the user ones of " + filepath.Join("testdata", "unknown", "alert_keys.lua") + ")",
			"unexpected field 'colour'",
		},
		"badkeys": {
			"alert_low: user keys are 32768 or more (got 100)",
			"key 40000 is declared twice (alert_a and alert_b)",
			"user key alert_ssh_bruteforce is also a builtin key (1)",
		},
	} {
		_, err := Load(filepath.Join("testdata", dir), "en")
		if err == nil {
			t.Fatalf("%s: want errors", dir)
		}
		for _, w := range wants {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: want %q in\n%v", dir, w, err)
			}
		}
	}
	if _, err := Load("testdata/none", "en"); err == nil {
		t.Fatal("a missing directory is an error")
	}
}

func TestBuiltinKeysAreStable(t *testing.T) {
	// Keys never change between releases: this list only grows.
	want := []string{"alert_ssh_bruteforce", "alert_auth_failure_burst", "alert_threshold_exceeded",
		"alert_flow_flood_attacker", "alert_flow_flood_victim", "alert_repeated"}
	for i, n := range want {
		if BuiltinKeys[i].Name != n || BuiltinKeys[i].Key != i+1 {
			t.Fatalf("builtin key %d changed: %+v", i+1, BuiltinKeys[i])
		}
	}
}

// Definitions written as ntopng's are: require "alert_keys", the builtin
// namespace as alert_keys.ntopng, i18n() in a description function.
func TestNtopngDefinitions(t *testing.T) {
	set, err := Load("testdata/ntopng", "en")
	if err != nil {
		t.Fatal(err)
	}
	login, ssh := set.ByName("alert_login_failed"), set.ByKey(1)
	if login == nil || login.Title != "Login failed" || !login.DescFunc || ssh == nil || ssh.Name != "alert_ssh_bruteforce" {
		t.Fatalf("%+v %+v", login, ssh)
	}
}

// Loading (and so `tern check`) runs each description function once, so a
// call to an undefined function (i18m for i18n) is an error naming the
// file and line, not a failure when the alert is first raised.
func TestUndefinedCallInDescription(t *testing.T) {
	_, err := Load("testdata/undefined", "en")
	file := filepath.Join("testdata", "undefined", "alert_typo.lua")
	want := file + ":8: i18n_description: undefined global 'i18m'"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}
