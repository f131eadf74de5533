package oracle

import (
	"context"
	"fmt"
	"net/http"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Metrics is one scrape of tern's /metrics.
type Metrics map[string]*dto.MetricFamily

// Scrape reads http://addr/metrics.
func Scrape(ctx context.Context, addr string) (Metrics, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(resp.Body)
}

// Sum adds the values of a counter or gauge whose labels include match.
func (m Metrics) Sum(name string, match map[string]string) float64 {
	f, ok := m[name]
	if !ok {
		return 0
	}
	total := 0.0
outer:
	for _, mt := range f.GetMetric() {
		for k, v := range match {
			found := false
			for _, lp := range mt.GetLabel() {
				if lp.GetName() == k && lp.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue outer
			}
		}
		switch {
		case mt.Counter != nil:
			total += mt.GetCounter().GetValue()
		case mt.Gauge != nil:
			total += mt.GetGauge().GetValue()
		case mt.Untyped != nil:
			total += mt.GetUntyped().GetValue()
		}
	}
	return total
}

// Drops sums tern_dropped_total by reason.
func (m Metrics) Drops() map[string]float64 {
	out := map[string]float64{}
	for _, mt := range m["tern_dropped_total"].GetMetric() {
		for _, lp := range mt.GetLabel() {
			if lp.GetName() == "reason" {
				out[lp.GetValue()] += mt.GetCounter().GetValue()
			}
		}
	}
	return out
}
