// When a certificate counts as expiring: builds warn, `pki status` marks it, and the spec warns
// about a validity so short that every certificate always would be.
export const EXPIRY_WARNING_DAYS = 30;
