// Command linksall calls what the boot path must not run (encoding/json's
// encoder and decoder, os/exec), so that TestBootPathCode can show it finds
// them.
package main

import (
	"encoding/json"
	"os"
	"os/exec"
)

func main() {
	var v map[string]string
	_ = json.Unmarshal([]byte(os.Args[0]), &v)
	b, _ := json.Marshal(v)
	_ = exec.Command(string(b)).Run()
}
