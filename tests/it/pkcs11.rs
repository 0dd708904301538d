//! PKCS#11 provider tests against SoftHSM2 (bad PINs, missing tokens, mechanisms, pool).
