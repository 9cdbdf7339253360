#!/usr/bin/env node
// What a CNI plugin does for each new workload, from the library: take one IPv4 and one IPv6
// address for a pod on a node, with the container ID as the handle.
// Usage: node examples/ipam-allocate.mjs NODE NAMESPACE POD [POD...]   (datastore: $CALICO_DATASTORE)
import { openDatastore } from "../dist/src/datastore/open.js";
import { IPAM } from "../dist/src/ipam/index.js";

const [node, namespace, ...pods] = process.argv.slice(2);
if (node === undefined || namespace === undefined || pods.length === 0) {
  console.error("usage: node examples/ipam-allocate.mjs NODE NAMESPACE POD [POD...]");
  process.exit(2);
}
const ds = await openDatastore(process.env.CALICO_DATASTORE);
try {
  const ipam = new IPAM(ds);
  for (const pod of pods) {
    const r = await ipam.autoAssign({
      node,
      handleID: `k8s-pod-network.${namespace}-${pod}`,
      attrs: { node, namespace, pod },
      num4: 1,
      num6: 1,
    });
    const addrs = [...r.ipv4, ...r.ipv6].map((a) => a.address).join(", ");
    console.log(`${namespace}/${pod} on ${node}: ${addrs}`);
  }
} finally {
  await ds.close();
}
