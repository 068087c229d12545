package targets

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/connprobe/connprobe/probe"
)

// Profile is a named set of checks for one vendor or service, with params
// the user fills in. Its file schema is documented in profiles/README.md.
type Profile struct {
	Name        string
	Description string
	// Origin is the profile's source: key, the document it follows (or a
	// note); zero when not set.
	Origin SourceRef
	// NotCovered lists the document's rows the profile does not check, and why.
	NotCovered []NotCovered
	Params     []Param
	Checks     []CheckSpec
	Source     string // "embedded:profiles/NAME.yml" or the file path
}

// Param is a value a profile's checks reference as ${name}, or (type bool)
// a switch that enables conditional checks through when:.
type Param struct {
	Name        string
	Description string
	Type        string // ParamString or ParamBool; never ""
	// Default is as written; "" when not set (a bool param is then false).
	Default string
	// DefaultSource says where a string param's default comes from.
	DefaultSource string
	// Required params have no default; a check that uses one while it is
	// unset is skipped (see Skipped), not an error.
	Required bool
	Example  string
	line     int
}

// Param types (a param's type:).
const (
	ParamString = "string"
	ParamBool   = "bool"
)

// Levels of a profile check (level:). An essential or conditional check
// is essential (Check.Essential); a recommended one is not. A conditional
// check exists only when the bool param named by when: is true.
const (
	LevelEssential   = "essential"
	LevelRecommended = "recommended"
	LevelConditional = "conditional"
)

// Directions of a profile check (direction:): whether the traffic the
// check stands for leaves the site (out) or reaches it (in).
const (
	DirectionOut = "out"
	DirectionIn  = "in"
)

// SourceRef is a source: mapping: the document, table and row a check
// follows, or a note saying why it was added without one. A profile's own
// source: has a document (or a note) only.
type SourceRef struct {
	Document string
	Table    string
	Row      string
	Note     string
}

// String is the reference in one line, e.g.
// `clover-pos-ports.de.txt, table clover, row "443/TCP"` or `note: ...`.
func (s SourceRef) String() string {
	if s.Note != "" {
		return "note: " + s.Note
	}
	out := s.Document
	if s.Table != "" {
		out += ", table " + s.Table
	}
	if s.Row != "" {
		out += ", row " + strconv.Quote(s.Row)
	}
	return out
}

// NotCovered is one not_covered: entry of a profile: a row of the source
// document that no check covers, and why.
type NotCovered struct {
	Table string
	Row   string
	Why   string
}

// CheckMeta holds the keys only profile checks have (and must have, but
// when:); zero for the checks of a config file.
type CheckMeta struct {
	Direction string    // DirectionOut or DirectionIn
	Level     string    // LevelEssential, LevelRecommended or LevelConditional
	When      string    // a bool param; the check exists only when it is true
	Purpose   string    // what the check proves, for people
	Source    SourceRef // where the check comes from
}

// Essential is the Check.Essential a level gives: everything but
// recommended (a conditional check exists only when it was asked for).
func (m CheckMeta) Essential() bool { return m.Level != LevelRecommended }

// ParseProfile decodes one profile document; name is used in errors and as
// the base for relative tls.ca_file paths.
func ParseProfile(name string, data []byte) (*Profile, error) {
	if err := checkSize(name, data); err != nil {
		return nil, err
	}
	root, err := parseDoc(name, data)
	if err != nil {
		return nil, err
	}
	if root == nil {
		return nil, &Error{File: name, Msg: "the profile file is empty; it needs name: and checks:"}
	}
	var errs errList
	d := &decoder{file: name, errs: &errs}
	p := d.profile(root)
	if !errs.empty() {
		return nil, errs.err()
	}
	return p, nil
}

// isProfileFile says which files in a profile directory are profiles; the
// rest (README.md, editor backups) is ignored.
func isProfileFile(name string) bool {
	return !strings.HasPrefix(name, ".") && (strings.HasSuffix(name, ".yml") || strings.HasSuffix(name, ".yaml"))
}

// builtinProfiles parses the embedded catalogue.
func builtinProfiles() ([]Profile, error) {
	entries, err := fs.ReadDir(embedded, "profiles")
	if err != nil {
		return nil, err
	}
	var out []Profile
	var errs errList
	for _, e := range entries {
		if e.IsDir() || !isProfileFile(e.Name()) {
			continue
		}
		p := path.Join("profiles", e.Name())
		data, err := embedded.ReadFile(p)
		if err != nil {
			return nil, err
		}
		prof, err := ParseProfile("embedded:"+p, data)
		if err != nil {
			errs.errs = append(errs.errs, err)
			continue
		}
		out = append(out, *prof)
	}
	return out, errs.err()
}

// LoadProfiles parses every *.yml and *.yaml file in dir (not recursively),
// for --profiles.dir.
func LoadProfiles(dir string) ([]Profile, error) {
	entries, err := profileFiles(dir)
	if err != nil {
		return nil, fmt.Errorf("profiles dir: %w", err)
	}
	var out []Profile
	var errs errList
	seen := map[string]string{}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		data, err := readLimited(p)
		var le *Error
		if errors.As(err, &le) {
			errs.errs = append(errs.errs, err)
			continue
		}
		if err != nil {
			errs.errs = append(errs.errs, fmt.Errorf("profiles dir: %w", err))
			continue
		}
		prof, err := ParseProfile(p, data)
		if err != nil {
			errs.errs = append(errs.errs, err)
			continue
		}
		if other, dup := seen[prof.Name]; dup {
			errs.add(p, 0, "profile %q is also defined in %s; profile names must be unique", prof.Name, other)
			continue
		}
		seen[prof.Name] = p
		out = append(out, *prof)
	}
	return out, errs.err()
}

// Catalogue lists the built-in profiles plus those in profilesDir (if not
// ""), sorted by name. A directory profile replaces a built-in one of the
// same name, so that a site can fix a vendor's changed hosts before a
// release does; Source tells which one is in effect.
func Catalogue(profilesDir string) ([]Profile, error) {
	builtin, err := builtinProfiles()
	if err != nil {
		return nil, err
	}
	byName := map[string]Profile{}
	for _, p := range builtin {
		byName[p.Name] = p
	}
	if profilesDir != "" {
		extra, err := LoadProfiles(profilesDir)
		if err != nil {
			return nil, err
		}
		for _, p := range extra {
			byName[p.Name] = p
		}
	}
	out := make([]Profile, 0, len(byName))
	for _, p := range byName {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// param returns the declared param called name.
func (p *Profile) param(name string) (Param, bool) {
	for _, prm := range p.Params {
		if prm.Name == name {
			return prm, true
		}
	}
	return Param{}, false
}

func (p *Profile) paramNames() []string {
	var out []string
	for _, prm := range p.Params {
		out = append(out, prm.Name)
	}
	return out
}

// FindProfile returns the profile called name in cat, or an error that
// names the known profiles (and the closest one, for a typo).
func FindProfile(cat []Profile, name string) (*Profile, error) {
	names := make([]string, 0, len(cat))
	for i := range cat {
		if cat[i].Name == name {
			return &cat[i], nil
		}
		names = append(names, cat[i].Name)
	}
	known := "none yet"
	if len(names) > 0 {
		known = strings.Join(names, ", ")
	}
	hint := ""
	if s := suggest(name, names); strings.HasPrefix(s, " (did you mean") {
		hint = s
	}
	return nil, fmt.Errorf("unknown profile %q%s (known: %s)", name, hint, known)
}

// PortText is the check's port as written, params unresolved: its port:,
// its ports: joined with ",", or the kind's default port; "" when none.
func (c *CheckSpec) PortText() string {
	switch {
	case c.Port != "":
		return c.Port
	case len(c.Ports) > 0:
		return strings.Join(c.Ports, ",")
	}
	if k, err := probe.LookupKind(c.Kind); err == nil {
		if _, _, port, _ := transport(k, c.Transport); port != 0 {
			return strconv.Itoa(port)
		}
	}
	return ""
}

// TransportText is the wire protocol the check speaks: its protocol: or
// the kind's default (tcp, udp, or for sip also tls).
func (c *CheckSpec) TransportText() string {
	k, err := probe.LookupKind(c.Kind)
	if err != nil {
		return c.Transport
	}
	variant, label, _, _ := transport(k, c.Transport)
	return firstSet(variant, label)
}

// ExampleParams are the --param flags, each with its param's example, that
// the checks a profile runs by default (every bool param at its default)
// need so that none of them is skipped.
func (p *Profile) ExampleParams() []string {
	values := map[string]string{}
	for _, prm := range p.Params {
		values[prm.Name] = prm.Default
	}
	var out []string
	seen := map[string]bool{}
	for i := range p.Checks {
		s := &p.Checks[i]
		if w := s.Meta.When; w != "" && values[w] != "true" {
			continue
		}
		for _, prm := range p.missing(s, values) {
			flag := fmt.Sprintf("--param %s.%s=%s", p.Name, prm.Name, prm.Example)
			if !seen[flag] {
				seen[flag] = true
				out = append(out, flag)
			}
		}
	}
	return out
}
