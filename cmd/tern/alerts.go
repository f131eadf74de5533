package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"

	"github.com/ternlog/tern/internal/alertdef"
	"github.com/ternlog/tern/pipeline/config"
)

// alertDirs is implemented by filter configs that name an alert
// definitions directory (the Lua filter's).
type alertDirs interface {
	AlertDefinitionDir(configDir string) (dir, locale string)
}

// alertRow is one line of `tern alerts list`.
type alertRow struct {
	Key       int    `json:"key"`
	KeyString string `json:"key_string"`
	Name      string `json:"name"`
	Icon      string `json:"icon"`
	Namespace string `json:"namespace"`
	Sources   bool   `json:"sources"`
	Targets   bool   `json:"targets"`
	File      string `json:"file"`
}

// cmdAlerts is `tern alerts list`: every alert definition of the filters in
// a config (or of one directory), like ntopng's developer page.
func cmdAlerts(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("alerts")
	path := configFlag(fs)
	dir := fs.String("dir", "", "list the definitions in `DIR` instead of the config's")
	locale := fs.String("locale", "", "use the catalog of language `LANG` (default: the filter's locale, else en)")
	asJSON := fs.Bool("json", false, "print JSON")
	if len(args) > 0 && args[0] == "list" {
		args = args[1:]
	} else if len(args) == 0 {
		return usageError(stderr, "alerts", "missing subcommand (list)")
	} else if !isHelp(args[0]) {
		return usageError(stderr, "alerts", fmt.Sprintf("unknown subcommand %q (known: list)", args[0]))
	}
	if code, done := parseFlags(fs, "alerts", args, stdout, stderr); done {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(stderr, "alerts", fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	type source struct{ dir, locale string }
	var sources []source
	if *dir != "" {
		sources = append(sources, source{*dir, *locale})
	} else {
		plan, err := config.Load(*path, registry(), config.Options{})
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		seen := map[string]bool{}
		for _, f := range plan.Filters {
			ad, ok := f.Config.(alertDirs)
			if !ok {
				continue
			}
			d, loc := ad.AlertDefinitionDir(plan.Dir)
			if *locale != "" {
				loc = *locale
			}
			if d == "" || seen[d+"\x00"+loc] {
				continue
			}
			seen[d+"\x00"+loc] = true
			sources = append(sources, source{d, loc})
		}
	}
	var rows []alertRow
	failed := false
	for _, s := range sources {
		set, err := alertdef.Load(s.dir, s.locale)
		if err != nil {
			fmt.Fprintln(stderr, err)
			failed = true
		}
		if set == nil {
			continue
		}
		for _, d := range set.Defs {
			rows = append(rows, alertRow{
				Key: d.Key, KeyString: d.Name, Name: d.Title, Icon: d.Icon, Namespace: d.Namespace,
				Sources: d.Sources != "", Targets: d.Targets != "", File: d.File,
			})
		}
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].Key < rows[j].Key })
	if *asJSON {
		if rows == nil {
			rows = []alertRow{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rows)
	} else {
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "KEY\tKEY STRING\tNAME\tICON\tNAMESPACE\tSOURCES\tTARGETS")
		for _, r := range rows {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Key, r.KeyString, r.Name, r.Icon, r.Namespace, yesNo(r.Sources), yesNo(r.Targets))
		}
		_ = tw.Flush()
	}
	if failed {
		return 1
	}
	return 0
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
