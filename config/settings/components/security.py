"""HTTP security: safe by default with DEBUG off, so `manage.py check --deploy` is clean."""

from csp.constants import NONCE, NONE, SELF, UNSAFE_INLINE

from config.env import DEBUG, env, integer

# Behind a TLS-terminating proxy or load balancer, set SECURE_PROXY_SSL_HEADER_ENABLED so Django
# trusts its X-Forwarded-Proto; never enable it when clients can reach the server directly.
if env.bool("SECURE_PROXY_SSL_HEADER_ENABLED", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
# Probes of the orchestrator speak plain HTTP to the pod.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^health$", r"^metrics$"]
SECURE_HSTS_SECONDS = integer("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
SESSION_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# Client IP for rate limits: the socket address, unless this many trusted proxies append to
# X-Forwarded-For; then the address the outermost trusted proxy saw. A forged header cannot change it.
TRUSTED_PROXY_COUNT = integer("TRUSTED_PROXY_COUNT", 0, minimum=0)

# Content-Security-Policy (django-csp) on every response (docs/configuration.md, "HTTPS"). The pages
# (admin, browsable API, Swagger UI, ReDoc, GraphiQL) load everything from this server: scripts from
# files, plus GraphiQL's one inline script with the request's nonce; no eval. Styles may be inline
# (Swagger UI, ReDoc and GraphiQL set them from script); images and fonts may be data: URLs; ReDoc
# runs its search in a blob: worker. Nothing may frame the pages, and forms post only here.
CSP_ENABLED = env.bool("CSP_ENABLED", default=True)
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF, "data:"],
        "connect-src": [SELF],
        "worker-src": [SELF, "blob:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
