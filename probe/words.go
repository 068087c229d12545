package probe

// plainWords say each reason in a few words for people who do not know the
// vocabulary (the shop owner on the status page); the README's reason table
// has the full meaning. Every reason has words: see the test.
var plainWords = map[Reason]string{
	ReasonOK:            "works",
	ReasonRefused:       "refused by the target",
	ReasonRejected:      "blocked by a device on the way",
	ReasonTimeout:       "timed out: no answer",
	ReasonUnreachable:   "no route to the target",
	ReasonDNS:           "name not found",
	ReasonTLSUntrusted:  "certificate not trusted",
	ReasonTLSHostname:   "certificate for another name",
	ReasonTLSExpired:    "certificate expired or not yet valid",
	ReasonTLSHandshake:  "secure connection failed",
	ReasonIntercepted:   "secure connection intercepted (TLS inspection?)",
	ReasonProtocol:      "answered, but not as expected",
	ReasonLocal:         "blocked on this computer",
	ReasonNoReply:       "no answer",
	ReasonProxyDenied:   "refused by the proxy",
	ReasonSkipped:       "not run",
	ReasonInternalError: "connprobe could not run it",
}

// Plain is the reason in plain words for people; the reason itself for an
// unknown one.
func (r Reason) Plain() string {
	if w, ok := plainWords[r]; ok {
		return w
	}
	return string(r)
}
