/**
 * Who is making a request to the API server, as established by bearer-token authentication
 * (Kubernetes static-token file: `token,user,uid[,"group1,group2"]`). Handlers receive it after
 * authentication; with no token file configured every request is anonymous and allowed.
 */
export interface AuthInfo {
  user: string;
  uid: string;
  groups: readonly string[];
  /** True when the token is in the `read-only` group: only GET/HEAD (and watches) are allowed. */
  readOnly: boolean;
}
