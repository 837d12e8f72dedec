// Defaults for the example SPA. `python examples/demo.py` serves its own
// /config.js with the URLs it actually started; this file is what a plain
// static server would serve. Data only: app.js reads it, nothing runs here.
window.CONTACTS_SPA_CONFIG = {
  issuer: "http://127.0.0.1:5000",
  // null = read authorization_endpoint from the issuer's discovery document
  authorizeUrl: null,
  apiUrl: "http://127.0.0.1:5001",
  clientId: "spa",
  scope: "openid profile contacts wte coordinate",
  // Extra authorization request parameters some providers need, e.g.
  // {"resource": "api://contacts"} for RFC 8707 resource indicators.
  extraAuthParams: {}
};
