from django.urls import path

from accounts import apis

urlpatterns = [
    path("auth/nonce", apis.NonceApi.as_view(), name="auth-nonce"),
    path("auth/siwe", apis.SiweSignInApi.as_view(), name="auth-siwe"),
    path("auth/logout", apis.LogoutApi.as_view(), name="auth-logout"),
]
