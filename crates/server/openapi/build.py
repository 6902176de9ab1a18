#!/usr/bin/env python3
"""Writes crates/server/src/openapi.json, the OpenAPI document of the Sluice service's API.

The document is kept here as data (one place per path) and checked against the running
service by schemathesis (crates/server/tests/fuzz.rs). Run it after changing a route:
    python3 crates/server/openapi/build.py
"""
import json, pathlib

def ref(name):
    return {"$ref": f"#/components/schemas/{name}"}

def body(schema, required=True, yaml=False):
    content = {"application/json": {"schema": schema}}
    if yaml:
        content["application/yaml"] = {"schema": {"type": "string"}}
    return {"required": required, "content": content}

def answer(desc, schema=None):
    r = {"description": desc}
    if schema is not None:
        r["content"] = {"application/json": {"schema": schema}}
    return r

ERR = answer("what is wrong, naming the field", ref("Error"))
def errors(*codes):
    names = {400: "bad request", 401: "no valid credentials", 403: "the viewer role reads only",
             404: "not found", 409: "exists, or the state does not allow it", 503: "unavailable"}
    return {str(c): {"description": names[c], "content": {"application/json": {"schema": ref("Error")}}} for c in codes}

def op(summary, responses, request=None, params=None, public=False, tag=None):
    o = {"summary": summary, "responses": responses}
    if request is not None:
        o["requestBody"] = request
    if params:
        o["parameters"] = params
    if public:
        o["security"] = []
    if tag:
        o["tags"] = [tag]
    return o

def path_param(name):
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}

NAME = path_param("name")
obj = lambda props, required=(), extra=True: {
    "type": "object", "properties": props, "required": list(required), "additionalProperties": extra}
S = {"type": "string"}
S1 = {"type": "string", "minLength": 1}
NAMED = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"}
TABLE = {"type": "string", "pattern": "^[^*.]+[.][^*]+$"}
I = {"type": "integer"}
B = {"type": "boolean"}
N = {"type": "number"}
nullable = lambda s: {**s, "nullable": True}

TABLE_ID = obj({"db": S, "table": S})
SELECTION = {"type": "array", "items": obj({"table": TABLE_ID, "to": TABLE_ID})}
ACTIONS = {"type": "array", "items": obj({"action": S, "allowed": B, "reason": S}, ["action", "allowed"], False)}

PORT = {"type": "integer", "minimum": 1, "maximum": 65535}
PROPS = {"type": "object", "additionalProperties": S}
TLS_MODE = {"type": "string", "enum": ["disabled", "preferred", "required", "verify_ca", "verify_identity"]}
DATABASE = {"host": S1, "port": PORT, "user": S1, "password": S1,
            "tls_mode": TLS_MODE, "tls_ca_file": S1, "tls_cert_file": S1, "tls_key_file": S1}
KINDS = {
    "mysql": (DATABASE, ["host", "user"]),
    "mariadb": (DATABASE, ["host", "user"]),
    "oceanbase": (DATABASE, ["host", "user"]),
    "postgres": ({**DATABASE, "database": S1}, ["host", "user"]),
    "kafka": ({"brokers": S1, "properties": PROPS}, ["brokers"]),
    "rocketmq": ({"namesrv": S1, "access_key": S1, "secret_key": S1}, ["namesrv"]),
    # As the DataHub section checks it: http:// and a host, trailing slashes trimmed.
    "datahub": ({"endpoint": {"type": "string", "pattern": "^http://[\\s\\S]*[^/]/*$"}, "access_id": S1, "access_key": S1,
                 "project": {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9_]{2,31}$"}}, ["endpoint", "access_id", "access_key"]),
}
schemas = {
    "Error": obj({"error": S, "field": nullable(S), "precheck": ref("Findings")}, ["error"]),
    "Login": obj({"user": S1, "password": S1}, ["user", "password"]),
    "Session": obj({"token": S, "user": S, "role": S, "expires_ms": I}, ["token", "user", "role", "expires_ms"], False),
    "Me": obj({"user": S, "role": S}, ["user", "role"], False),
    "User": obj({"name": S, "role": {"type": "string", "enum": ["admin", "viewer"]}}, ["name", "role"], False),
    "NewUser": obj({"name": NAMED, "password": S1, "role": {"type": "string", "enum": ["admin", "viewer"]}}, ["name", "password"]),
    "UserChange": obj({"password": S1, "role": {"type": "string", "enum": ["admin", "viewer"]}}),
    "Token": obj({"id": S, "user": S, "kind": S, "label": S, "created_ms": I, "expires_ms": nullable(I), "revoked": B},
                 ["id", "user", "kind", "label", "created_ms", "expires_ms", "revoked"], False),
    "NewToken": obj({"label": {"type": "string", "maxLength": 200},
                     "expires_in_s": nullable({"type": "integer", "minimum": 1, "maximum": 315360000})}),
    "TokenCreated": obj({"token": S, "id": S, "label": S, "expires_ms": nullable(I)}, ["token", "id", "label", "expires_ms"], False),
    "Datasource": {**obj({"name": S, "kind": S, "used_by": {"type": "array", "items": S}, "created_ms": I, "updated_ms": I},
                         ["name", "kind", "used_by", "created_ms", "updated_ms"]),
                   "description": "The kind's fields (host, port, user, brokers, namesrv, endpoint, access_id, ...) and, for each secret field, NAME_set (true when set); never a secret."},
    "NewDatasource": {"oneOf": [ref(f"NewDatasource_{k}") for k in KINDS],
                      "description": "The fields of the kind (docs/SERVER.md)."},
    "DatasourceChange": obj({}),
    "TestResult": obj({"ok": B, "message": S}, ["ok", "message"], False),
    "ProjectSpec": {**obj({"name": S, "source": {"type": "object"}, "destination": {"type": "object"}, "objects": {"type": "object"},
                           "stages": {"type": "object"}, "options": {"type": "object"}}, ["name", "source", "destination", "objects"]),
                    "description": "The project file's fields (docs/PROJECTS.md); source and destination may be {\"datasource\": NAME} plus the type's own fields."},
    "Component": nullable(obj({"position": S, "rows": I, "bytes": I, "rows_per_s": N, "bytes_per_s": N, "delay_ms": nullable(I)})),
    "Checkpoint": nullable(obj({"position": S, "ts_ms": I}, ["position", "ts_ms"])),
    "ProjectSummary": obj({"name": S, "state": S, "stage": S, "message": S, "checkpoint": ref("Checkpoint"),
                           "latency_ms": nullable(I), "store": ref("Component"), "writer": ref("Component"),
                           "source": nullable(S), "destination": nullable(S), "actions": ACTIONS},
                          ["name", "state", "stage", "checkpoint", "latency_ms"]),
    "Project": obj({"name": S, "state": {"type": "string", "enum": ["NotStarted", "Running", "Paused", "Failed", "Completed", "Stopped", "Released", "Modifying"]},
                    "stage": S, "message": S, "checkpoint": ref("Checkpoint"), "latency_ms": nullable(I),
                    "full": obj({"finished": B, "tables": {"type": "array", "items": obj({"table": S, "rows": I, "total": I, "done": B})}}),
                    "store": ref("Component"), "writer": ref("Component"), "spec": {"type": "object"},
                    "errors": {"type": "array", "items": obj({"at_ms": I, "message": S})},
                    "modifications": {"type": "array", "items": obj({"id": I, "at_ms": I, "change": {"type": "object"}, "state": S, "message": S})},
                    "actions": ACTIONS, "verifying": B,
                    "verification": {"type": "array", "items": obj({"table": S, "dest": S, "at_ms": I, "took_ms": I, "rows": I, "equal": I,
                                                                      "missing": I, "extra": I, "different": I, "detail": nullable({"type": "object"})})},
                    "precheck": ref("Findings"), "created_ms": I, "updated_ms": I,
                    # A project not running: what it keeps on its source (a PostgreSQL slot's WAL).
                    "on_source": S},
                   ["name", "state", "stage", "checkpoint", "latency_ms", "spec", "errors", "modifications"]),
    "Finding": obj({"item": S, "problem": S, "fix": S}, ["item", "problem", "fix"], False),
    "Trial": obj({"name": S, "valid": B, "precheck": ref("Findings"),
                  "tables": SELECTION},
                 ["name", "valid", "tables"]),
    "Findings": obj({"passed": B, "checked": {"type": "array", "items": S},
                     "failures": {"type": "array", "items": ref("Finding")}, "warnings": {"type": "array", "items": ref("Finding")}},
                    ["passed", "checked", "failures", "warnings"], False),
    "Sample": obj({"at_ms": I, "store": ref("Component"), "writer": ref("Component")}),
}

for k, (fields, required) in KINDS.items():
    schemas[f"NewDatasource_{k}"] = obj({"name": NAMED, "kind": {"type": "string", "enum": [k]}, **fields},
                                        ["name", "kind", *required], False)
schemas["Objects"] = {"anyOf": [obj({"add": {"type": "array", "items": TABLE, "minItems": 1},
                                      "remove": {"type": "array", "items": TABLE}}, ["add"]),
                                 obj({"add": {"type": "array", "items": TABLE},
                                      "remove": {"type": "array", "items": TABLE, "minItems": 1}}, ["remove"])]}
schemas["ActionBody"] = obj({"force": B, "name": NAMED})

text = {"text/plain": {"schema": {"type": "string"}}}
paths = {
    "/health": {"get": op("The service answers", {"200": {"description": "ok", "content": text}}, public=True, tag="service")},
    "/ready": {"get": op("The projects that were running have been started again",
                         {"200": {"description": "ready", "content": text}, "503": {"description": "starting", "content": text}}, public=True, tag="service")},
    "/metrics": {"get": op("Prometheus metrics of every running project", {"200": {"description": "the text format", "content": text}}, public=True, tag="service")},
    "/api/v1/openapi.json": {"get": op("This document", {"200": answer("the document", {"type": "object"})}, public=True, tag="service")},
    "/api/v1/login": {"post": op("Log in: a session token (12 h) for Authorization: Bearer", {"200": answer("the session", ref("Session")), **errors(400, 401)},
                                 request=body(ref("Login")), public=True, tag="auth")},
    "/api/v1/logout": {"post": op("End this login session", {"200": answer("logged out", obj({"user": S, "logged_out": B})), **errors(401)}, tag="auth")},
    "/api/v1/me": {"get": op("Who the token is", {"200": answer("the user", ref("Me")), **errors(401)}, tag="auth")},
    "/api/v1/users": {
        "get": op("List the users", {"200": answer("users", {"type": "array", "items": ref("User")}), **errors(401)}, tag="auth"),
        "post": op("Add a user (admin)", {"201": answer("added", ref("User")), **errors(400, 401, 403, 409)}, request=body(ref("NewUser")), tag="auth")},
    "/api/v1/users/{name}": {
        "put": op("Change a password (your own, or any as admin) or a role (admin)", {"200": answer("changed", ref("User")), **errors(400, 401, 403, 404, 409)},
                  request=body(ref("UserChange"), False), params=[NAME], tag="auth"),
        "delete": op("Delete a user and revoke its tokens (admin)", {"204": {"description": "deleted"}, **errors(401, 403, 404, 409)}, params=[NAME], tag="auth")},
    "/api/v1/tokens": {
        "get": op("Your API tokens", {"200": answer("tokens", {"type": "array", "items": ref("Token")}), **errors(401)}, tag="auth"),
        "post": op("Create an API token (shown once)", {"201": answer("the token", ref("TokenCreated")), **errors(400, 401)}, request=body(ref("NewToken"), False), tag="auth")},
    "/api/v1/tokens/{id}": {"delete": op("Revoke a token (yours, or any as admin)", {"204": {"description": "revoked"}, **errors(401, 404)}, params=[path_param("id")], tag="auth")},
    "/api/v1/datasources/{name}/tables": {"get": op("The tables of a database data source, read live from it, by database",
        {"200": answer("databases and their tables", {"type": "array", "items": obj({"db": S, "tables": {"type": "array", "items": S}}, ["db", "tables"], False)}),
         **errors(401, 404, 409)}, params=[NAME], tag="datasources")},
    "/api/v1/kinds": {"get": op("The kinds of data source and their fields",
                                {"200": answer("kinds", {"type": "array", "items": obj({"kind": S, "source": B, "fields": {"type": "array", "items": obj(
                                    {"name": S, "required": B, "secret": B, "type": {"type": "string", "enum": ["text", "port", "properties"]}},
                                    ["name", "required", "secret", "type"], False)}}, ["kind", "source", "fields"], False)}), **errors(401)}, tag="datasources")},
    "/api/v1/datasources": {
        "get": op("List the data sources", {"200": answer("data sources", {"type": "array", "items": ref("Datasource")}), **errors(401)}, tag="datasources"),
        "post": op("Add a data source (admin)", {"201": answer("added", ref("Datasource")), **errors(400, 401, 403, 409)}, request=body(ref("NewDatasource")), tag="datasources")},
    "/api/v1/datasources/{name}": {
        "get": op("Show a data source", {"200": answer("the data source", ref("Datasource")), **errors(401, 404)}, params=[NAME], tag="datasources"),
        "put": op("Change fields of a data source (admin; fields not given stay)", {"200": answer("changed", ref("Datasource")), **errors(400, 401, 403, 404)},
                  request=body(ref("DatasourceChange"), False), params=[NAME], tag="datasources"),
        "delete": op("Delete a data source no project names (admin)", {"204": {"description": "deleted"}, **errors(401, 403, 404, 409)}, params=[NAME], tag="datasources")},
    "/api/v1/datasources/{name}/test": {"post": op("Connect with a data source (admin)", {"200": answer("what the server answered", ref("TestResult")), **errors(400, 401, 403, 404)},
                                                   params=[NAME], tag="datasources")},
    "/api/v1/projects": {
        "get": op("List the projects", {"200": answer("projects", {"type": "array", "items": ref("ProjectSummary")}), **errors(401)}, tag="projects"),
        "post": op("Create a project from the project file's fields (JSON) or a project file (application/yaml) (admin)",
                   {"201": answer("created (NotStarted)", ref("Project")),
                    "200": answer("with dry_run=true: nothing stored; the tables the rules select, and the precheck when asked", ref("Trial")),
                    **errors(400, 401, 403, 409)}, request=body(ref("ProjectSpec"), yaml=True),
                   params=[{"name": "dry_run", "in": "query", "schema": {"type": "string", "enum": ["true", "false"]}},
                           {"name": "precheck", "in": "query", "schema": {"type": "string", "enum": ["true", "false"]}}], tag="projects")},
    "/api/v1/projects/{name}": {
        "get": op("A project: state, stage, checkpoint, latency, full-sync progress, Store and Writer, errors, modifications",
                  {"200": answer("the project", ref("Project")), **errors(401, 404)}, params=[NAME], tag="projects"),
        "delete": op("Delete a NotStarted or Released project (admin)", {"204": {"description": "deleted"}, **errors(401, 403, 404, 409)}, params=[NAME], tag="projects")},
    "/api/v1/projects/{name}/figures": {"get": op("The history of a project's Store and Writer figures, oldest first",
                                                  {"200": answer("samples", {"type": "array", "items": ref("Sample")}), **errors(400, 401, 404)},
                                                  params=[NAME, {"name": "since_ms", "in": "query", "schema": {"type": "integer", "minimum": 0}},
                                                          {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 100000}}], tag="projects")},
    "/api/v1/projects/{name}/yaml": {"get": op("The project as a project file, secrets left out",
        {"200": {"description": "the project file", "content": {"application/yaml": {"schema": {"type": "string"}}}}, **errors(401, 404)},
        params=[NAME], tag="projects")},
    "/api/v1/projects/{name}/objects": {"get": op("The tables the project selects on its source now, each with its destination name",
                                                  {"200": answer("the selection", obj({"tables": SELECTION}, ["tables"])),
                                                   **errors(401, 404, 409)}, params=[NAME], tag="projects"),
                                        "post": op("Add or remove tables (\"db.table\"); a running project shows Modifying until the added tables are copied (admin)",
                                                   {"202": answer("the project", ref("Project")), **errors(400, 401, 403, 404, 409)},
                                                   request=body(ref("Objects")), params=[NAME], tag="projects")},
    "/api/v1/projects/{name}/{action}": {"post": op(
        "start (precheck first; {\"force\": true} starts despite failures), pause, resume, stop, release, clone ({\"name\"}), precheck, verify (runs on its own; 202) (admin)",
        {"200": answer("the project, or the precheck's findings", {"oneOf": [ref("Project"), ref("Findings")]}),
         "201": answer("the clone", ref("Project")), "202": answer("a verification started", ref("Project")),
         **errors(400, 401, 403, 404, 409, 503)},
        request=body(ref("ActionBody"), False),
        params=[NAME, {"name": "action", "in": "path", "required": True,
                       "schema": {"type": "string", "enum": ["start", "pause", "resume", "stop", "release", "clone", "precheck", "verify"]}}], tag="projects")},
}

doc = {
    "openapi": "3.0.3",
    "info": {"title": "Sluice service API", "version": "1",
             "description": "Data sources, synchronization projects and their lifecycle (docs/SERVER.md)."},
    "servers": [{"url": "/"}],
    "security": [{"bearer": []}, {"session": []}],
    "paths": paths,
    "components": {
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer", "description": "a token from POST /api/v1/login, or an API token"},
            "session": {"type": "apiKey", "in": "cookie", "name": "sluice_session"}},
        "schemas": schemas},
}
out = pathlib.Path(__file__).resolve().parent.parent / "src" / "openapi.json"
out.write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n")
print(f"wrote {out}")
