package targets

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// Profile is a named set of checks for one vendor or service, with params
// the user fills in. Its file schema is documented in profiles/README.md.
type Profile struct {
	Name        string
	Description string
	Params      []Param
	Checks      []CheckSpec
	Source      string // "embedded:profiles/NAME.yml" or the file path
}

// Param is a value a profile's checks reference as ${name}.
type Param struct {
	Name        string
	Description string
	Default     string
	Required    bool
	Example     string
	line        int
}

// ParseProfile decodes one profile document; name is used in errors and as
// the base for relative tls.ca_file paths.
func ParseProfile(name string, data []byte) (*Profile, error) {
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
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("profiles dir: %w", err)
	}
	var out []Profile
	var errs errList
	seen := map[string]string{}
	for _, e := range entries {
		if e.IsDir() || !isProfileFile(e.Name()) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		data, err := os.ReadFile(p)
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
