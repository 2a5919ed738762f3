"""The incident's broken site: only `location /api/`, proxied to the FastAPI backend (no upgrade headers).

Format with ``listen`` (address:port) and ``upstream`` (host:port). ``INCIDENT_SITE`` is the demo's and the
benchmarks'; ``INCIDENT_SITE_SERVER_HEADERS`` (the proxy headers at server level, which a new location must
keep inheriting) is the one the ws_location and reliability tests edit, with exact bytes expected after.
"""

INCIDENT_SITE = """\
server {{
    listen {listen};
    server_name app.example.com;

    location / {{
        root /var/www/html;
        try_files $uri /index.html;
    }}

    location /api/ {{
        proxy_pass http://{upstream};
        proxy_set_header Host $host;
        proxy_set_header X-Real-IP $remote_addr;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
    }}
}}
"""

INCIDENT_SITE_SERVER_HEADERS = """\
server {{
    listen {listen};
    server_name app.example.test;
    proxy_set_header Host $host;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;

    # the API
    location /api/ {{
        proxy_pass http://{upstream};
    }}
}}
"""
