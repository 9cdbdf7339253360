/** YAML the real-kernel agent tests share. */

/** Namespace x's profile: allow everything both ways (what Calico gives a Kubernetes namespace). */
export const KNS_X_ALLOW = `
apiVersion: projectcalico.org/v3
kind: Profile
metadata: {name: kns.x}
spec:
  ingress: [{action: Allow}]
  egress: [{action: Allow}]
`;

/** b accepts only TCP 80 from a (so c → b is denied). */
export const B_FROM_A = `
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: b-from-a}
spec:
  selector: app == 'b'
  types: [Ingress]
  ingress: [{action: Allow, protocol: TCP, source: {selector: app == 'a'}, destination: {ports: [80]}}]
`;

export const docs = (...parts: string[]): string => parts.map((p) => p.trim()).join("\n---\n");
