package record

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// strs are strings that exercise every escape encoding/json makes.
var strs = []string{
	"", "plain", `quote " and backslash \`, "<html> & </html>", "tab\tnewline\nreturn\r",
	"\b\f\x00\x01\x1f\x7f", "é ü 日本 🙂", "\u2028 and \u2029", "bad \xff utf-8 \xc3", "\xed\xa0\x80 surrogate in utf-8",
	"/slash/", strings.Repeat("x", 5000),
}

func TestAppendStringIsEncodingJSONs(t *testing.T) {
	for _, s := range strs {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendString(nil, s); !bytes.Equal(got, want) {
			t.Errorf("AppendString(%q) = %s, encoding/json %s", s, got, want)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range strs {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		got := AppendString(nil, s)
		if !bytes.Equal(got, want) {
			t.Fatalf("AppendString(%q) = %s, encoding/json %s", s, got, want)
		}
		// And it reads back as encoding/json reads it.
		v, found, err := String([]byte(`{"k":`+string(got)+`}`), "k")
		var back string
		if jerr := json.Unmarshal(got, &back); jerr != nil || err != nil || !found || v != back {
			t.Fatalf("read back %s: %q %v %v; encoding/json %q %v", got, v, found, err, back, jerr)
		}
	})
}

type inner struct {
	A string `json:"a"`
	B string `json:"b,omitempty"`
}

type outer struct {
	Time  time.Time `json:"time"`
	Name  string    `json:"name"`
	On    bool      `json:"on"`
	Items []inner   `json:"items"`
	N     int       `json:"n,omitempty"`
}

func (o outer) build() []byte {
	var items Array
	for _, it := range o.Items {
		obj := NewObject().String("a", it.A)
		if it.B != "" {
			obj.String("b", it.B)
		}
		items.Add(obj.Bytes())
	}
	obj := NewObject().Time("time", o.Time).String("name", o.Name).Bool("on", o.On).Raw("items", items.Bytes(o.Items != nil))
	if o.N != 0 {
		obj.Int("n", o.N)
	}
	return obj.Bytes()
}

func TestObjectIsEncodingJSONs(t *testing.T) {
	when := time.Date(2026, 12, 2, 18, 30, 0, 123456789, time.UTC)
	for _, o := range []outer{
		{},
		{Time: when, Name: "root.sqsh <x>", On: true, Items: []inner{}, N: -7},
		{Time: when.In(time.FixedZone("x", 3600)), Items: []inner{{A: "a"}, {A: "\n", B: "b"}}, N: 1 << 30},
		{Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Name: "\xff"},
	} {
		want, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		if got := o.build(); !bytes.Equal(got, want) {
			t.Errorf("Object:\n got %s\nwant %s", got, want)
		}
	}
}

func TestTimeOutOfRange(t *testing.T) {
	// encoding/json refuses these years; a record still gets written, with
	// the zero time, which encoding/json reads back.
	got := NewObject().Time("time", time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)).Bytes()
	var r struct {
		Time time.Time `json:"time"`
	}
	if err := json.Unmarshal(got, &r); err != nil || !r.Time.IsZero() {
		t.Fatalf("%s: %v %v", got, r.Time, err)
	}
}

// TestTimeZoneOutOfRange: a zone offset of a day or more is written as
// the same instant in UTC, which encoding/json reads back; as the zone's
// own offset ("+25:00") encoding/json refused the whole record.
func TestTimeZoneOutOfRange(t *testing.T) {
	for _, off := range []int{24 * 3600, -24 * 3600, 25*3600 + 17, -99 * 3600} {
		when := time.Date(2026, 12, 3, 12, 0, 0, 5, time.FixedZone("far", off))
		got := NewObject().Time("time", when).Bytes()
		var r struct {
			Time time.Time `json:"time"`
		}
		if err := json.Unmarshal(got, &r); err != nil {
			t.Fatalf("offset %d s: %s: %v", off, got, err)
		}
		if !r.Time.Equal(when) {
			t.Errorf("offset %d s: %s reads back as %v, want the instant %v", off, got, r.Time, when.UTC())
		}
	}
}

func TestString(t *testing.T) {
	for _, c := range []struct {
		in, want string
		found    bool
		bad      bool
	}{
		{in: `{"k":"v"}`, want: "v", found: true},
		{in: " \t\r\n{ \"k\" : \"v\" } \n", want: "v", found: true},
		{in: `{}`},
		{in: `{"other":"v"}`},
		{in: `{"x":[1,-2.5e+3,{"y":null},true,false,"s",[]],"k":"v","z":{}}`, want: "v", found: true},
		{in: `{"k":"\u00e9\ud83d\ude42\/\b\f\n\r\t\"\\"}`, want: "é🙂/\b\f\n\r\t\"\\", found: true},
		{in: `{"k":"\ud800x"}`, want: "\ufffdx", found: true},
		{in: `{"k":"\udc00"}`, want: "\ufffd", found: true},
		{in: `{"k":"\ud800\u0041"}`, want: "\ufffdA", found: true},
		{in: `{"x":` + strings.Repeat("[", maxDepth-1) + "1" + strings.Repeat("]", maxDepth-1) + `,"k":"v"}`, want: "v", found: true},
		{in: "{\"k\":\"\xff\"}", want: "\ufffd", found: true},
		// Refused: not JSON.
		{in: ``, bad: true},
		{in: `[]`, bad: true},
		{in: `"k"`, bad: true},
		{in: `{"k":"v"`, bad: true},
		{in: `{"k":"v"}x`, bad: true},
		{in: `{"k":"v"}{}`, bad: true},
		{in: `{"k":"v",}`, bad: true},
		{in: `{"k" "v"}`, bad: true},
		{in: `{k:"v"}`, bad: true},
		{in: "{\"k\":\"a\nb\"}", bad: true},
		{in: `{"k":"\x"}`, bad: true},
		{in: `{"k":"\u12"}`, bad: true},
		{in: `{"x":01,"k":"v"}`, bad: true},
		{in: `{"x":1.,"k":"v"}`, bad: true},
		{in: `{"x":-,"k":"v"}`, bad: true},
		{in: `{"x":1e,"k":"v"}`, bad: true},
		{in: `{"x":tru,"k":"v"}`, bad: true},
		{in: `{"x":[1,],"k":"v"}`, bad: true},
		{in: `{"x":'s',"k":"v"}`, bad: true},
		{in: `{"x":` + strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1) + `,"k":"v"}`, bad: true},
		// encoding/json's depth counts the record's own braces: maxDepth
		// arrays inside it are one level too many.
		{in: `{"x":` + strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth) + `,"k":"v"}`, bad: true},
		// Refused: JSON that encoding/json would read otherwise.
		{in: `{"k":"a","k":"b"}`, bad: true},
		{in: `{"K":"a"}`, bad: true},
		{in: `{"k":"a","K":"b"}`, bad: true},
		{in: `{"k":1}`, bad: true},
		{in: `{"k":null}`, bad: true},
	} {
		v, found, err := String([]byte(c.in), "k")
		if c.bad {
			var re *Error
			if !errors.As(err, &re) {
				t.Errorf("%q: %q %v %v, want a *record.Error", c.in, v, found, err)
			}
			continue
		}
		if err != nil || found != c.found || v != c.want {
			t.Errorf("%q: %q %v %v, want %q %v", c.in, v, found, err, c.want, c.found)
		}
	}
	// The special folds: the Kelvin sign and the long s.
	for _, in := range []string{`{"\u212aey":"x"}`, "{\"\u212aey\":\"x\"}", `{"ſecret":"x"}`} {
		key := "key"
		if strings.Contains(in, "ſ") {
			key = "secret"
		}
		if _, _, err := String([]byte(in), key); err == nil {
			t.Errorf("%s: %q read, though encoding/json reads it as %q", in, key, key)
		}
	}
	// A key beyond ASCII: encoding/json folds it by Unicode simple folding
	// (é and É; σ, ς and Σ), and reads the last of such keys.
	for _, c := range []struct{ in, key string }{
		{`{"é":"a","É":"b"}`, "é"},
		{`{"σ":"a","ς":"b"}`, "σ"},
	} {
		want := jsonString(t, []byte(c.in), c.key)
		if v, found, err := String([]byte(c.in), c.key); err == nil {
			t.Errorf("%s: %q read as %q (found %v), encoding/json reads %q", c.in, c.key, v, found, want)
		}
	}
}

// jsonString is what encoding/json reads into a string field tagged key.
func jsonString(t *testing.T, b []byte, key string) string {
	t.Helper()
	typ := reflect.StructOf([]reflect.StructField{{Name: "V", Type: reflect.TypeFor[string](), Tag: reflect.StructTag(`json:"` + key + `"`)}})
	v := reflect.New(typ)
	if err := json.Unmarshal(b, v.Interface()); err != nil {
		t.Fatalf("%s: encoding/json: %v", b, err)
	}
	return v.Elem().Field(0).String()
}

// FuzzString holds String to encoding/json: whatever String reads, it reads
// as encoding/json does; and anything it takes is valid JSON.
func FuzzString(f *testing.F) {
	for _, s := range []string{`{"k":"v"}`, `{"x":[1,{"y":"z"}],"k":"\u00e9"}`, `{"K":"v"}`, `{"k":"a","k":"b"}`, `{"k":"\ud800"}`, "{\"k\":\"\xff\"}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, found, err := String(b, "k")
		var r struct {
			K string `json:"k"`
		}
		jerr := json.Unmarshal(b, &r)
		if err != nil {
			return // stricter than encoding/json is allowed
		}
		if !json.Valid(b) {
			t.Fatalf("%q: read %q, but it is not JSON", b, v)
		}
		if jerr != nil && found {
			t.Fatalf("%q: read %q, encoding/json: %v", b, v, jerr)
		}
		if jerr == nil && r.K != v {
			t.Fatalf("%q: read %q (found %v), encoding/json %q", b, v, found, r.K)
		}
	})
}
