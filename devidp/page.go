package devidp

import (
	"bytes"
	"errors"
	"html/template"
	"net/http"
	"strings"
)

// pageStyle is the style of the issuer's pages.
const pageStyle = `
body { font-family: system-ui, sans-serif; max-width: 28rem; margin: 3rem auto; padding: 0 1rem; color: #1b1f24; }
label { display: block; margin-top: 1rem; }
input { width: 100%; padding: .4rem; font-size: 1rem; box-sizing: border-box; }
button { margin-top: 1.2rem; padding: .5rem 1rem; font-size: 1rem; }
.error { color: #a40e26; }
.note { color: #57606a; font-size: .9rem; }
`

// pageHead opens every page of the issuer.
const pageHead = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>patchway dev sign-in</title>
<style>` + pageStyle + `</style>
</head>
<body>
<h1>patchway dev sign-in</h1>`

// pageTemplate is the verification page: the form, or the outcome of
// submitting it. html/template escapes everything it is given.
var pageTemplate = template.Must(template.New("device").Parse(pageHead + `
{{if .Message}}<p>{{.Message}}</p>{{end}}
{{if .Error}}<p class="error">{{.Error}}</p>{{end}}
{{if .ShowForm}}
<form method="post" action="/device">
<label>Code shown in your terminal
<input name="user_code" value="{{.UserCode}}" autocomplete="off" autocapitalize="characters" required></label>
<label>Username
<input name="username" value="{{.Username}}" autocomplete="username"></label>
<label>Password
<input name="password" type="password" autocomplete="current-password"></label>
<button type="submit" name="approve" value="1">Sign in</button>
<button type="submit" name="deny" value="1" formnovalidate>Deny</button>
</form>
<p class="note">This is the development issuer of <code>patchway dev</code>. Demo people: {{.People}}.</p>
{{end}}
</body>
</html>
`))

// page is what the template shows.
type page struct {
	Message  string
	Error    string
	ShowForm bool
	UserCode string
	Username string
	People   string
}

// maxShownCode bounds a code echoed back into the form.
const maxShownCode = 64

func (i *Issuer) handleDevicePage(w http.ResponseWriter, r *http.Request) {
	code := r.URL.Query().Get("user_code")
	if len(code) > maxShownCode {
		code = ""
	}
	i.render(w, http.StatusOK, page{ShowForm: true, UserCode: code})
}

func (i *Issuer) handleDeviceForm(w http.ResponseWriter, r *http.Request) {
	form, e := readForm(w, r)
	if e != nil {
		i.render(w, e.status, page{ShowForm: true, Error: e.Description})
		return
	}
	code, username := form.Get("user_code"), form.Get("username")
	if len(code) > maxShownCode {
		code = code[:maxShownCode]
	}
	if form.Has("deny") {
		if err := i.deny(code); err != nil {
			i.refusePage(w, err, code, username)
			return
		}
		i.render(w, http.StatusOK, page{Message: "Sign-in denied. Your terminal will report that the sign-in was refused."})
		return
	}
	if err := i.Approve(code, username, form.Get("password")); err != nil {
		i.refusePage(w, err, code, username)
		return
	}
	p, _ := i.person(username)
	who := p.Subject
	if p.Name != "" {
		who = p.Name + " (" + p.Subject + ")"
	}
	i.render(w, http.StatusOK, page{Message: "Signed in as " + who + ". Return to your terminal."})
}

// refusePage shows the form again with the reason it was refused.
func (i *Issuer) refusePage(w http.ResponseWriter, err error, code, username string) {
	status := http.StatusBadRequest
	if ae, ok := errors.AsType[*approveError](err); ok {
		status = ae.status
	}
	i.render(w, status, page{ShowForm: true, Error: err.Error(), UserCode: code, Username: username})
}

// person finds a person by the name they signed in with.
func (i *Issuer) person(username string) (Person, bool) {
	for _, p := range i.opts.People {
		if strings.EqualFold(p.Subject, strings.TrimSpace(username)) {
			return p, true
		}
	}
	return Person{}, false
}

// render writes the verification page.
func (i *Issuer) render(w http.ResponseWriter, status int, p page) {
	p.People = strings.Join(i.subjects(), ", ")
	writePage(w, status, pageTemplate, p, "'self'")
}

// writePage writes a page with headers that keep it out of caches and
// frames and let it load nothing from elsewhere; formAction is where its
// form may post (and, for the sign-in of a web application, redirect).
func writePage(w http.ResponseWriter, status int, t *template.Template, data any, formAction string) {
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		http.Error(w, "render the sign-in page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action "+formAction+"; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
