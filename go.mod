module github.com/connprobe/connprobe

go 1.26.0

require golang.org/x/sys v0.50.0

require go.yaml.in/yaml/v3 v3.0.6
