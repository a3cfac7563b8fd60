package report

import (
	"encoding/json"
	"io"

	"github.com/calico-pni/calico-pni/evaluator"
)

// jsonHit is a policy hit with the field names of Calico's flow logs
// (Goldmane's PolicyHit in JSON).
type jsonHit struct {
	Kind        string   `json:"kind"`
	Namespace   string   `json:"namespace,omitempty"`
	Name        string   `json:"name,omitempty"`
	Tier        string   `json:"tier,omitempty"`
	Action      string   `json:"action,omitempty"`
	PolicyIndex int      `json:"policyIndex"`
	RuleIndex   int      `json:"ruleIndex"`
	Trigger     *jsonHit `json:"trigger,omitempty"`
	// WrittenBy names the policy's owner (Owners), when it has one.
	WrittenBy string `json:"writtenBy,omitempty"`
}

type jsonSide struct {
	Endpoint string `json:"endpoint"`
	Policed  bool   `json:"policed"`
	Verdict  string `json:"verdict"`
	Reason   string `json:"reason"`
	// Policies lists the policies that select the endpoint for the
	// direction, in evaluation order.
	Policies []string  `json:"policies,omitempty"`
	Hits     []jsonHit `json:"policyHits"`
}

type jsonResult struct {
	Verdict string   `json:"verdict"`
	Reason  string   `json:"reason"`
	Ports   string   `json:"ports,omitempty"`
	Egress  jsonSide `json:"egress"`
	Ingress jsonSide `json:"ingress"`
}

type jsonExplanation struct {
	Verdict     string       `json:"verdict"`
	Reason      string       `json:"reason"`
	Source      string       `json:"source"`
	Destination string       `json:"destination"`
	Protocol    string       `json:"protocol"`
	Port        uint16       `json:"port,omitempty"`
	Policies    string       `json:"policies"`
	Egress      *jsonSide    `json:"egress,omitempty"`
	Ingress     *jsonSide    `json:"ingress,omitempty"`
	Allowed     string       `json:"allowedPorts,omitempty"`
	ByPort      []jsonResult `json:"byPort,omitempty"`
	Notes       []string     `json:"notes,omitempty"`
	// Owners names the owners of the policies that select either side,
	// by policy (Explanation.Owners).
	Owners map[string]Owner `json:"owners,omitempty"`
}

// ExplainJSON prints an explanation as JSON: the verdict and, for each
// side, its verdict and its policy hits in the shape of Calico's flow-log
// policy trace. Without a port, byPort holds one entry per group of ports
// that ended the same way.
func ExplainJSON(w io.Writer, e Explanation) error {
	out := jsonExplanation{Protocol: e.Protocol, Policies: e.Policies, Notes: e.Notes}
	owners := map[string]Owner{}
	if r := e.Result; r != nil {
		out.Verdict, out.Reason, out.Port = string(r.Verdict), r.Reason, r.Traffic.Port
		out.Source, out.Destination = r.Src.String(), r.Dst.String()
		eg, in := sideJSON(&r.Egress, e.Owners), sideJSON(&r.Ingress, e.Owners)
		out.Egress, out.Ingress = &eg, &in
		e.Owners.inResult(r, owners)
	} else {
		s := e.Summary
		out.Verdict, out.Reason = string(s.Verdict), summaryText(s)
		out.Source, out.Destination = s.Segments[0].Result.Src.String(), s.Segments[0].Result.Dst.String()
		if len(s.Allowed) > 0 {
			out.Allowed = evaluator.RangesText(s.Allowed)
		}
		for _, g := range groupSegments(s.Segments) {
			out.ByPort = append(out.ByPort, jsonResult{
				Verdict: string(g.result.Verdict), Reason: g.result.Reason, Ports: evaluator.RangesText(g.ports),
				Egress: sideJSON(&g.result.Egress, e.Owners), Ingress: sideJSON(&g.result.Ingress, e.Owners),
			})
			e.Owners.inResult(&g.result, owners)
		}
	}
	if len(owners) > 0 {
		out.Owners = owners
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func sideJSON(s *evaluator.Side, owners Owners) jsonSide {
	out := jsonSide{Endpoint: s.Endpoint.String(), Policed: s.Policed, Verdict: string(s.Verdict), Reason: s.Reason, Hits: []jsonHit{}}
	for _, t := range s.Tiers {
		for _, p := range t.Policies {
			out.Policies = append(out.Policies, p.String())
		}
	}
	writtenBy := func(h evaluator.Hit) string {
		if owner, ok := owners.of(hitPolicy(s, h)); ok {
			return owner.Name
		}
		return ""
	}
	for _, h := range s.Hits {
		out.Hits = append(out.Hits, hitJSON(h, writtenBy))
	}
	return out
}

func hitJSON(h evaluator.Hit, writtenBy func(evaluator.Hit) string) jsonHit {
	out := jsonHit{Kind: h.Kind, Namespace: h.Namespace, Name: h.Name, Tier: h.Tier, Action: string(h.Action), PolicyIndex: h.PolicyIndex, RuleIndex: h.RuleIndex, WrittenBy: writtenBy(h)}
	if h.Trigger != nil {
		t := hitJSON(*h.Trigger, writtenBy)
		t.Action = ""
		out.Trigger = &t
	}
	return out
}

// hitPolicy finds the policy of a hit among those that select the side.
func hitPolicy(s *evaluator.Side, h evaluator.Hit) *evaluator.Policy {
	for _, t := range s.Tiers {
		for _, p := range t.Policies {
			if p.FlowLogKind() == h.Kind && p.Namespace == h.Namespace && p.FlowLogName() == h.Name && p.TierName() == h.Tier {
				return p
			}
		}
	}
	return nil
}
