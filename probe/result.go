package probe

import (
	"encoding/json"
	"time"
)

// Reason is the one-word verdict vocabulary shared by every check kind. It is
// a public interface (metrics label values, JSON): extend it, never rename.
type Reason string

// The fixed reason vocabulary. README's reason table documents each.
const (
	ReasonOK            Reason = "ok"
	ReasonRefused       Reason = "refused"
	ReasonRejected      Reason = "rejected"
	ReasonTimeout       Reason = "timeout"
	ReasonUnreachable   Reason = "unreachable"
	ReasonDNS           Reason = "dns"
	ReasonTLSUntrusted  Reason = "tls_untrusted"
	ReasonTLSHostname   Reason = "tls_hostname"
	ReasonTLSExpired    Reason = "tls_expired"
	ReasonTLSHandshake  Reason = "tls_handshake"
	ReasonIntercepted   Reason = "intercepted"
	ReasonProtocol      Reason = "protocol"
	ReasonLocal         Reason = "local"
	ReasonNoReply       Reason = "no_reply"
	ReasonProxyDenied   Reason = "proxy_denied"
	ReasonSkipped       Reason = "skipped"
	ReasonInternalError Reason = "error"
)

// Reasons lists every reason in a stable order, so that metrics can
// pre-initialise one series per reason and clear the ones not current.
func Reasons() []Reason {
	return []Reason{
		ReasonOK, ReasonRefused, ReasonRejected, ReasonTimeout, ReasonUnreachable,
		ReasonDNS, ReasonTLSUntrusted, ReasonTLSHostname, ReasonTLSExpired,
		ReasonTLSHandshake, ReasonIntercepted, ReasonProtocol, ReasonLocal,
		ReasonNoReply, ReasonProxyDenied, ReasonSkipped, ReasonInternalError,
	}
}

// Phase names the step in which a probe stopped (or "" when it completed).
type Phase string

// Phases a probe can stop in.
const (
	PhaseNone     Phase = ""
	PhaseDNS      Phase = "dns"
	PhaseConnect  Phase = "connect"
	PhaseTLS      Phase = "tls"
	PhaseBanner   Phase = "banner"
	PhaseLogin    Phase = "login"
	PhaseStartTLS Phase = "starttls"
	PhaseData     Phase = "data"
	PhaseRequest  Phase = "request"
	PhaseResponse Phase = "response"
)

// Timing is the duration of one phase of an attempt.
type Timing struct {
	Phase    Phase         `json:"phase"`
	Duration time.Duration `json:"-"`
	Seconds  float64       `json:"seconds"`
}

// Result is what one attempt against one address observed. Nothing downstream
// re-derives a verdict from it: Up, Reason and Phase are the verdict.
type Result struct {
	Check    *Check
	Address  string // the IP probed; empty when the name did not resolve
	IPFamily string // "ipv4" or "ipv6"

	Up     bool
	Reason Reason
	Phase  Phase  // where it stopped; for an ok result, the last phase completed
	Detail string // for people, never a label

	Start    time.Time
	Duration time.Duration
	Timings  []Timing
	Facts    Facts

	// Throttle asks the scheduler to slow down or stop probing this check's
	// server (an NTP Kiss-o'-Death). Probes never sleep themselves.
	Throttle Throttle

	// Path is where the traffic of a failed attempt stopped, when a trace
	// ran for it (see path.go); nil otherwise. A trace never changes Up or
	// Reason.
	Path *Path
}

// Throttle is a request from a server to be probed less.
type Throttle int

// Throttle requests.
const (
	ThrottleNone    Throttle = iota
	ThrottleBackoff          // slow down (NTP RATE): double the interval until a normal reply
	ThrottleStop             // stop (NTP DENY, RSTR) until the configuration changes
)

// Facts are kind-specific measurements. Each kind owns one embedded struct;
// encoding/json flattens them into one "facts" object.
type Facts struct {
	*TLSFacts
	*NTPFacts
	*UDPFacts
	*GreetingFacts
	*FTPFacts
	*SIPFacts
	*HTTPFacts
	*ListenFacts
	*BroadcastFacts
}

// NTPFacts are what an NTP reply showed. Reachable, usable and the offset are
// three separate facts: a server can answer (reachable) and still be unfit.
type NTPFacts struct {
	Reachable           bool    `json:"reachable"`
	Usable              bool    `json:"usable"`
	OffsetSeconds       float64 `json:"offset_seconds"`
	RTTSeconds          float64 `json:"rtt_seconds"`
	Stratum             int     `json:"stratum"`
	Leap                int     `json:"leap"`
	RootDistanceSeconds float64 `json:"root_distance_seconds"`
	KissCode            string  `json:"kiss_code"`
	ReferenceID         string  `json:"reference_id,omitempty"`
	SourcePort          int     `json:"source_port"`
}

// UDPFacts are what a UDP exchange showed.
type UDPFacts struct {
	SourcePort int     `json:"source_port"`
	ReplyBytes int     `json:"reply_bytes"`
	RTTSeconds float64 `json:"rtt_seconds,omitempty"`
}

// TLSFacts are what a completed (or failed, as far as observed) TLS handshake showed.
type TLSFacts struct {
	Version          string    `json:"version,omitempty"`
	Cipher           string    `json:"cipher,omitempty"`
	Issuer           string    `json:"issuer,omitempty"`
	Subject          string    `json:"subject,omitempty"`
	NotAfter         time.Time `json:"not_after,omitzero"`
	ServerName       string    `json:"server_name,omitempty"`
	ConnectSeconds   float64   `json:"connect_seconds,omitempty"`
	HandshakeSeconds float64   `json:"handshake_seconds,omitempty"`
	// ClassicCurvesOnly is set when the default (post-quantum) ClientHello
	// timed out and only a retry with classic key exchange completed.
	ClassicCurvesOnly bool `json:"classic_curves_only,omitempty"`
}

// addTiming records how long a phase took.
func (r *Result) addTiming(p Phase, d time.Duration) {
	r.Timings = append(r.Timings, Timing{Phase: p, Duration: d, Seconds: d.Seconds()})
}

// TimingOf returns the recorded duration of a phase, if any.
func (r *Result) TimingOf(p Phase) (time.Duration, bool) {
	for _, t := range r.Timings {
		if t.Phase == p {
			return t.Duration, true
		}
	}
	return 0, false
}

// MarshalJSON merges the non-nil kind facts into one object. (Plain struct
// embedding would silently drop field names that two kinds share.)
func (f Facts) MarshalJSON() ([]byte, error) {
	var parts []any
	if f.TLSFacts != nil {
		parts = append(parts, f.TLSFacts)
	}
	if f.NTPFacts != nil {
		parts = append(parts, f.NTPFacts)
	}
	if f.UDPFacts != nil {
		parts = append(parts, f.UDPFacts)
	}
	if f.GreetingFacts != nil {
		parts = append(parts, f.GreetingFacts)
	}
	if f.FTPFacts != nil {
		parts = append(parts, f.FTPFacts)
	}
	if f.SIPFacts != nil {
		parts = append(parts, f.SIPFacts)
	}
	if f.HTTPFacts != nil {
		parts = append(parts, f.HTTPFacts)
	}
	if f.ListenFacts != nil {
		parts = append(parts, f.ListenFacts)
	}
	if f.BroadcastFacts != nil {
		parts = append(parts, f.BroadcastFacts)
	}
	merged := map[string]json.RawMessage{}
	for _, part := range parts {
		b, err := json.Marshal(part)
		if err != nil {
			return nil, err
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, err
		}
		for k, v := range m {
			merged[k] = v
		}
	}
	return json.Marshal(merged)
}
