"""Word lists for the demo data, and the hostile strings the UI must survive.

Kept apart from the generator so the lists can grow without touching logic.
Emails use the reserved ``example.*`` domains: the data looks real but can
never reach a real mailbox.
"""
from __future__ import annotations

import unicodedata

FIRST_ES = (
    "Ana", "María", "Carmen", "Lucía", "Laura", "Marta", "Elena", "Paula", "Sara", "Cristina",
    "Isabel", "Pilar", "Rosa", "Nuria", "Beatriz", "Raquel", "Silvia", "Irene", "Alba", "Noelia",
    "José", "Antonio", "Manuel", "Francisco", "David", "Javier", "Daniel", "Carlos", "Jesús", "Alejandro",
    "Miguel", "Rafael", "Pablo", "Sergio", "Fernando", "Jorge", "Luis", "Alberto", "Álvaro", "Iñaki",
    "Jordi", "Montserrat", "Xabier", "Begoña", "Íñigo", "Nerea", "Aitor", "Ainhoa", "Òscar", "Núria",
)
LAST_ES = (
    "García", "Rodríguez", "González", "Fernández", "López", "Martínez", "Sánchez", "Pérez", "Gómez", "Martín",
    "Jiménez", "Ruiz", "Hernández", "Díaz", "Moreno", "Muñoz", "Álvarez", "Romero", "Alonso", "Gutiérrez",
    "Navarro", "Torres", "Domínguez", "Vázquez", "Ramos", "Gil", "Ramírez", "Serrano", "Blanco", "Molina",
    "Morales", "Suárez", "Ortega", "Delgado", "Castro", "Ortiz", "Rubio", "Marín", "Sanz", "Núñez",
    "Iglesias", "Medina", "Garrido", "Cortés", "Castillo", "Santos", "Lozano", "Guerrero", "Cano", "Prieto",
    "Puig", "Ferrer", "Vidal", "Soler", "Etxeberria", "Agirre", "O'Donnell", "de la Fuente", "del Río", "Peña",
)
FIRST_INTL = (
    "John", "Mary", "Robert", "Patricia", "Michael", "Jennifer", "William", "Linda", "James", "Emily",
    "Oliver", "Charlotte", "Harry", "Amelia", "Jean", "Camille", "Louis", "Chloé", "Lukas", "Hannah",
    "Wei", "Mei", "Hiroshi", "Yuki", "Ahmed", "Fatima", "Olga", "Dmitri", "Siobhán", "Zoë",
)
LAST_INTL = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Taylor", "Clark",
    "Dubois", "Lefèvre", "Moreau", "Müller", "Schmidt", "Schneider", "Fischer", "Tan", "Lim", "Ng",
    "Nakamura", "Sato", "Al-Sayed", "Haddad", "Ivanova", "Petrov", "O'Connor", "McAllister", "Hernández", "Silva",
)
COMPANY_WORDS = (
    "Talleres", "Construcciones", "Distribuciones", "Transportes", "Comercial", "Hermanos", "Grupo", "Servicios",
    "Inmobiliaria", "Farmacia", "Clínica", "Hostelería", "Logística", "Ingeniería", "Consultores", "Panadería",
)
COMPANY_SUFFIX = ("SL", "SA", "S.L.", "S.L.U.", "SLU", "Sociedad Limitada", "& Asociados", "Cía.")
COMPANY_SUFFIX_INTL = ("Ltd", "LLC", "Inc.", "GmbH", "SARL", "Pte Ltd", "S.A. de C.V.")
MAIL_DOMAINS = ("example.com", "example.net", "example.org", "mail.example.com", "correo.example.es")

PRODUCT_KINDS = (
    ("Lavadora", 299, 899), ("Secadora", 249, 799), ("Frigorífico", 399, 1899), ("Horno", 199, 999),
    ("Microondas", 59, 299), ("Lavavajillas", 299, 899), ("Televisor", 249, 2499), ("Portátil", 399, 2199),
    ("Router Wi-Fi", 39, 249), ("Aspiradora", 79, 699), ("Cafetera", 39, 899), ("Garantía ampliada", 29, 199),
    ("Instalación a domicilio", 25, 120), ("Cable HDMI", 5, 25), ("Auriculares", 19, 399),
)
PRODUCT_BRANDS = ("Acme", "Nordvik", "Solara", "Kumo", "Brava", "Helix", "Tessa", "Orbis")

TICKET_SUBJECTS = (
    "Entrega retrasada", "La lavadora hace ruido", "Factura duplicada", "Solicitud de devolución",
    "Cambio de dirección de envío", "Producto llegó dañado", "No puedo acceder a mi cuenta",
    "Consulta sobre garantía", "Cobro no reconocido", "Instalación pendiente", "Router se desconecta",
    "Reclamación: técnico no se presentó", "Baja del servicio", "Cambio de titular", "Pedido incompleto",
    "Delivery delayed", "Refund not received", "Wrong item shipped",
)
AGENTS = ("Marta (L1)", "Pedro (L1)", "Lucía (L2)", "Samir (L2)", "bot", "Supervisor")
UPDATE_BODIES = (
    "Cliente llama para pedir el estado.", "Se escala a nivel 2.", "Se envía técnico.",
    "Esperando respuesta del cliente.", "Reembolso tramitado.", "Cliente confirma que está resuelto.",
    "Customer called back, still waiting.", "Llamada cortada, volver a llamar.",
)

# Strings that break careless HTML, SQL or bidi handling.  None contains NUL,
# which PostgreSQL text cannot store.
SCRIPT = "<script>alert(1)</script>"
HOSTILE_NAMES = (
    SCRIPT,
    "O'Brien \"Bobby\" Tables",
    "Robert'); DROP TABLE customers;--",
    "\u202eevil\u202c María",  # right-to-left override
    "מרים \u200fCohen",  # Hebrew with a right-to-left mark
    "<img src=x onerror=alert(2)>",
    "Zoë &amp; Ünal ${7*7} {{7*7}}",
)
HOSTILE_NOTE = (
    "Nota interna: " + SCRIPT + " cliente dice \"no llaméis antes de las 10\" & 'urgente'. "
    "\u202eRTL override\u202c \u200f\u05e9\u05dc\u05d5\u05dd\u200f emoji 📞🔥 tab\there\nnew line\r\n"
) * 15  # a little over 2 KB


def ascii_fold(text: str) -> str:
    """'Núñez' -> 'Nunez': what older systems and email addresses keep of a name."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
