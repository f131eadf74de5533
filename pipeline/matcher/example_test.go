package matcher_test

import (
	"fmt"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/matcher"
)

func ExampleCompile() {
	m, err := matcher.Compile("Type == 'auth' && Severity <= 4 && Fields[user] =~ /^adm/")
	if err != nil {
		fmt.Println(err)
		return
	}
	msg := pipeline.NewMessage()
	msg.Type, msg.Severity = "auth", pipeline.SeverityWarning
	msg.AddString("user", "admin")
	fmt.Println(m.Match(msg))

	_, err = matcher.Compile("Type == 'auth' && Payload =~ 'root'")
	fmt.Println(err)
	// Output:
	// true
	// syntax error at position 29: expected a regex after =~, found a string (near "'root'")
}
