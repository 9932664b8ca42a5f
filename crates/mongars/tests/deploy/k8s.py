"""Render every kustomize overlay of deploy/k8s, validate each manifest
against the Kubernetes JSON schemas (kubernetes-validate, offline), and
check the policies the deployment promises. Prints one line per overlay;
exits 1 listing every problem.

The renderer covers what the overlays use (resources, namespace, images,
labels, patches by file) and refuses any other kustomization field, so that
nothing kubectl would apply is silently skipped here.

    python3 k8s.py REPO_ROOT
"""
import copy
import json
import os
import sys

import kubernetes_validate
import yaml

K8S_VERSION = "1.30.0"
KUSTOMIZATION_FIELDS = {"apiVersion", "kind", "namespace", "resources", "images", "patches", "labels"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume", "StorageClass",
                  "CustomResourceDefinition", "ClusterSecretStore"}
# Custom resources: no schema in kubernetes-validate; their shape is checked here.
CRDS = {
    ("external-secrets.io/v1beta1", "SecretStore"): ["spec.provider.vault.server", "spec.provider.vault.version"],
    ("external-secrets.io/v1beta1", "ExternalSecret"): ["spec.secretStoreRef.name", "spec.target.name", "spec.data"],
    ("bitnami.com/v1alpha1", "SealedSecret"): ["spec.encryptedData", "spec.template.metadata.name"],
    ("monitoring.coreos.com/v1", "ServiceMonitor"): ["spec.selector.matchLabels", "spec.endpoints"],
    ("cert-manager.io/v1", "Issuer"): ["spec.ca.secretName"],
}
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}


def load(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def merge(base, patch):
    """A strategic merge as far as the overlays need it: maps merge, lists of
    named maps (containers, ports) merge by name, other lists are replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        for k, v in patch.items():
            base[k] = merge(base[k], v) if k in base else copy.deepcopy(v)
        return base
    if (isinstance(base, list) and isinstance(patch, list)
            and all(isinstance(x, dict) and "name" in x for x in base + patch)):
        by_name = {x["name"]: x for x in base}
        for x in patch:
            if x["name"] in by_name:
                merge(by_name[x["name"]], x)
            else:
                base.append(copy.deepcopy(x))
        return base
    return copy.deepcopy(patch)


def key(doc):
    return (doc["kind"], doc["metadata"]["name"])


def pod_specs(doc):
    if doc["kind"] in WORKLOADS:
        yield doc["spec"]["template"]["spec"]


def render(folder):
    k = load(os.path.join(folder, "kustomization.yaml"))[0]
    unknown = set(k) - KUSTOMIZATION_FIELDS
    if unknown:
        raise SystemExit(f"{folder}: kustomization fields this renderer does not apply: {sorted(unknown)}")
    docs = []
    for r in k.get("resources", []):
        path = os.path.normpath(os.path.join(folder, r))
        docs += render(path) if os.path.isdir(path) else load(path)
    by_key = {key(d): d for d in docs}
    for p in k.get("patches", []):
        if set(p) != {"path"}:
            raise SystemExit(f"{folder}: only patches by path are rendered here: {p}")
        for patch in load(os.path.join(folder, p["path"])):
            if key(patch) not in by_key:
                raise SystemExit(f"{folder}: patch for {key(patch)} matches nothing")
            merge(by_key[key(patch)], patch)
    for lab in k.get("labels", []):
        if lab.get("includeSelectors") or lab.get("includeTemplates"):
            raise SystemExit(f"{folder}: labels on selectors or templates are not rendered here")
        for d in docs:
            d.setdefault("metadata", {}).setdefault("labels", {}).update(lab["pairs"])
    for img in k.get("images", []):
        matched = False
        for d in docs:
            for spec in pod_specs(d):
                for c in spec.get("containers", []) + spec.get("initContainers", []):
                    name = c["image"].rsplit(":", 1)[0] if ":" in c["image"].split("/")[-1] else c["image"]
                    if name == img["name"]:
                        c["image"] = f"{img.get('newName', name)}:{img['newTag']}"
                        matched = True
        if not matched:
            raise SystemExit(f"{folder}: images entry {img['name']!r} matches no container")
    if "namespace" in k:
        for d in docs:
            if d["kind"] not in CLUSTER_SCOPED:
                d["metadata"]["namespace"] = k["namespace"]
            if d["kind"] in ("RoleBinding", "ClusterRoleBinding"):
                for s in d.get("subjects", []):
                    if s["kind"] == "ServiceAccount":
                        s["namespace"] = k["namespace"]
    return docs


def get(doc, dotted):
    for part in dotted.split("."):
        if not isinstance(doc, dict) or part not in doc:
            return None
        doc = doc[part]
    return doc


def check(overlay, docs, routes):
    problems = []
    say = problems.append
    kinds = {}
    for d in docs:
        kinds.setdefault(d["kind"], []).append(d)
        crd = CRDS.get((d["apiVersion"], d["kind"]))
        if crd is not None:
            for field in crd:
                if get(d, field) in (None, "", [], {}):
                    say(f"{key(d)}: {field} missing")
            continue
        try:
            kubernetes_validate.validate(d, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            say(f"{key(d)}: schema: {e.message} at {'.'.join(map(str, e.path))}")
        except kubernetes_validate.SchemaNotFoundError:
            say(f"{key(d)}: no schema for {d['apiVersion']} {d['kind']}")
        if d["kind"] == "Secret" and (d.get("data") or d.get("stringData")):
            say(f"{key(d)}: a Secret with values is rendered")
    deployments = kinds.get("Deployment", [])
    if len(deployments) != 1:
        say(f"one Deployment expected, found {len(deployments)}")
        return problems
    dep = deployments[0]
    ns = dep["metadata"].get("namespace")
    pod = dep["spec"]["template"]["spec"]
    psc = pod.get("securityContext", {})
    for field, want in [("runAsNonRoot", True), ("runAsUser", 10001), ("runAsGroup", 10001)]:
        if psc.get(field) != want:
            say(f"pod securityContext.{field} is {psc.get(field)!r}, not {want!r}")
    if get(psc, "seccompProfile.type") != "RuntimeDefault":
        say("pod seccompProfile is not RuntimeDefault")
    if pod.get("automountServiceAccountToken") is not False:
        say("the pod mounts a ServiceAccount token it does not use")
    if pod.get("hostNetwork") or pod.get("hostPID") or pod.get("hostIPC"):
        say("the pod shares a host namespace")
    for c in pod.get("containers", []) + pod.get("initContainers", []):
        sc = c.get("securityContext", {})
        if sc.get("allowPrivilegeEscalation") is not False:
            say(f"container {c['name']}: privilege escalation allowed")
        if sc.get("readOnlyRootFilesystem") is not True:
            say(f"container {c['name']}: root filesystem writable")
        if sc.get("privileged"):
            say(f"container {c['name']}: privileged")
        if get(sc, "capabilities.drop") != ["ALL"] or get(sc, "capabilities.add"):
            say(f"container {c['name']}: capabilities not exactly drop ALL")
        image = c["image"]
        tag = image.rsplit(":", 1)[1] if ":" in image.split("/")[-1] else ""
        if tag in ("", "latest") and "@sha256:" not in image:
            say(f"container {c['name']}: image {image} has no pinned tag")
        ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            http = get(c, f"{probe}.httpGet")
            if http is None:
                say(f"container {c['name']}: no {probe}")
                continue
            if http["path"] not in routes:
                say(f"container {c['name']}: {probe} on {http['path']}, not a route of the server")
            if http["port"] not in ports and http["port"] not in ports.values():
                say(f"container {c['name']}: {probe} on port {http['port']}, not a container port")
        for r in ("requests", "limits"):
            if not get(c, f"resources.{r}.memory") or not get(c, f"resources.{r}.cpu"):
                say(f"container {c['name']}: resources.{r} incomplete")
        for e in c.get("env", []):
            # A path to a file (`..._FILE`) is no secret; its content may be.
            if ("value" in e and not e["name"].endswith("_FILE")
                    and any(w in e["name"].lower() for w in ("secret", "password", "token", "key", "url"))):
                say(f"container {c['name']}: {e['name']} given as a plain value")
    # RBAC: the Deployment's ServiceAccount is the one bound, to a Role that
    # grants nothing beyond what the server calls (nothing, today).
    sa = pod.get("serviceAccountName")
    if not any(s["metadata"]["name"] == sa for s in kinds.get("ServiceAccount", [])):
        say(f"ServiceAccount {sa!r} named by the Deployment is not rendered")
    roles = {r["metadata"]["name"]: r for r in kinds.get("Role", [])}
    bound = False
    for b in kinds.get("RoleBinding", []):
        for s in b.get("subjects", []):
            if s["kind"] == "ServiceAccount" and s["name"] == sa and s.get("namespace") == ns:
                bound = True
                if b["roleRef"]["kind"] != "Role" or b["roleRef"]["name"] not in roles:
                    say(f"RoleBinding {b['metadata']['name']} refers to a Role that is not rendered")
    if not bound:
        say(f"no RoleBinding binds ServiceAccount {sa!r} in namespace {ns!r}")
    allowed_verbs = set()  # what the server calls on the Kubernetes API
    for r in roles.values():
        for rule in r.get("rules") or []:
            for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                if "*" in (rule.get(field) or []):
                    say(f"Role {r['metadata']['name']}: wildcard in {field}")
            extra = set(rule.get("verbs") or []) - allowed_verbs
            if extra:
                say(f"Role {r['metadata']['name']}: verbs the server never uses: {sorted(extra)}")
    if kinds.get("ClusterRole") or kinds.get("ClusterRoleBinding"):
        say("cluster-wide RBAC is rendered")
    # Selectors that reach the pods.
    labels = dep["spec"]["template"]["metadata"]["labels"]

    def selects(selector):
        return bool(selector) and all(labels.get(k) == v for k, v in selector.items())

    if not selects(dep["spec"]["selector"]["matchLabels"]):
        say("the Deployment's selector misses its pods")
    for kind in ("Service", "PodDisruptionBudget", "NetworkPolicy"):
        for d in kinds.get(kind, []):
            sel = d["spec"].get("selector") if kind == "Service" else get(d, "spec.selector.matchLabels") or get(d, "spec.podSelector.matchLabels")
            if not selects(sel):
                say(f"{kind} {d['metadata']['name']} selects no pod of the Deployment")
    if not kinds.get("NetworkPolicy"):
        say("no NetworkPolicy")
    for np in kinds.get("NetworkPolicy", []):
        if set(np["spec"].get("policyTypes", [])) != {"Ingress", "Egress"}:
            say(f"NetworkPolicy {np['metadata']['name']} does not restrict both directions")
        for rule in np["spec"].get("ingress", []):
            if not rule.get("from"):
                say(f"NetworkPolicy {np['metadata']['name']}: ingress from anywhere")
    for hpa in kinds.get("HorizontalPodAutoscaler", []):
        if hpa["spec"]["scaleTargetRef"]["name"] != dep["metadata"]["name"]:
            say(f"HorizontalPodAutoscaler {hpa['metadata']['name']} scales something else")
    for kind in ("PodDisruptionBudget", "HorizontalPodAutoscaler"):
        if not kinds.get(kind):
            say(f"no {kind}")
    # Every Secret the pod reads is made by the overlay, never committed.
    made = {get(d, "spec.target.name") for d in kinds.get("ExternalSecret", [])}
    made |= {get(d, "spec.template.metadata.name") or d["metadata"]["name"] for d in kinds.get("SealedSecret", [])}
    for c in pod["containers"]:
        for e in c.get("env", []):
            ref = get(e, "valueFrom.secretKeyRef")
            if ref and ref["name"] not in made:
                say(f"Secret {ref['name']} is read but no ExternalSecret or SealedSecret makes it")
            if ref:
                keys = set()
                for d in kinds.get("ExternalSecret", []):
                    keys |= {x["secretKey"] for x in d["spec"].get("data", [])}
                for d in kinds.get("SealedSecret", []):
                    keys |= set(d["spec"].get("encryptedData", {}))
                if ref["key"] not in keys:
                    say(f"Secret key {ref['key']} is read but never provided")
    return problems


def committed_secrets(root):
    found = []
    for folder, _, files in os.walk(os.path.join(root, "deploy")):
        for f in files:
            if f.endswith((".yaml", ".yml")):
                path = os.path.join(folder, f)
                for d in load(path):
                    if isinstance(d, dict) and d.get("kind") == "Secret" and (d.get("data") or d.get("stringData")):
                        found.append(os.path.relpath(path, root))
    return found


def main():
    root = sys.argv[1]
    with open(os.path.join(root, "docs/openapi.json")) as f:
        routes = set(json.load(f)["paths"])
    problems = [f"a Secret with values is committed in {p}" for p in committed_secrets(root)]
    overlays = os.path.join(root, "deploy/k8s/overlays")
    names = sorted(os.listdir(overlays))
    if set(names) < {"dev", "prod"}:
        problems.append(f"overlays dev and prod expected, found {names}")
    for name in names:
        docs = render(os.path.join(overlays, name))
        found = check(name, docs, routes)
        problems += [f"{name}: {p}" for p in found]
        kinds = sorted({d["kind"] for d in docs})
        print(f"{name}: {len(docs)} manifests ({', '.join(kinds)}), {len(found)} problems")
        if name == "prod":
            cm = next(d for d in docs if d["kind"] == "ConfigMap")
            with open(os.path.join(os.environ.get("CONFIG_OUT", "/dev/null")), "w") as f:
                f.write(cm["data"]["mongars.toml"])
    for p in problems:
        print(f"problem: {p}")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
